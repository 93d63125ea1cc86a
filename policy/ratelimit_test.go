package policy_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/policy"
)

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]policy.Limit{
		"100/1m": {100, time.Minute}, "50/1s": {50, time.Second}, "10/m": {10, time.Minute}, "3/500ms": {3, 500 * time.Millisecond},
	} {
		if got, err := policy.ParseLimit(in); err != nil || got != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"100", "0/1s", "-1/1s", "x/1s", "10/fortnight", "10/0s", "10/"} {
		if _, err := policy.ParseLimit(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// A bucket of n a window: n at once, then one per window/n; refusals take
// nothing; keys are apart; a bucket idle for a window (full again) is
// dropped.
func TestLocalLimit(t *testing.T) {
	l := policy.NewLocal()
	lim := policy.Limit{N: 3, Window: 3 * time.Second}
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if d := l.Allow("a", lim, t0); !d.Allowed {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	for range 5 {
		if d := l.Allow("a", lim, t0.Add(500*time.Millisecond)); d.Allowed || d.RetryAfter != 500*time.Millisecond {
			t.Fatalf("over: %+v", d)
		}
	}
	if d := l.Allow("b", lim, t0); !d.Allowed {
		t.Fatal("another key shares the bucket")
	}
	if d := l.Allow("a", lim, t0.Add(time.Second)); !d.Allowed {
		t.Fatalf("a request's worth later (the refusals took nothing): %+v", d)
	}
	if d := l.Allow("a", lim, t0.Add(time.Second)); d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("then none: %+v", d)
	}
	if l.Len() != 2 {
		t.Fatalf("%d buckets", l.Len())
	}
	// Two minutes later both are full again: the next request in their
	// shards drops them. Touch every shard with keys of its own.
	later := t0.Add(2 * time.Minute)
	fillers := map[string]bool{}
	for i := range 1000 {
		k := strings.Repeat("k", i%7) + string(rune('a'+i%26)) + string(rune('A'+i/26))
		fillers[k] = true
		l.Allow(k, policy.Limit{N: 1, Window: time.Hour}, later)
	}
	if l.Len() != len(fillers) {
		t.Fatalf("%d buckets, want the %d active ones: the idle ones were not dropped", l.Len(), len(fillers))
	}
	for i := range 3 {
		if d := l.Allow("a", lim, later); !d.Allowed {
			t.Fatalf("a full bucket again, request %d: %+v", i, d)
		}
	}
}

func TestWriteTooMany(t *testing.T) {
	w := httptest.NewRecorder()
	policy.WriteTooMany(w, "per-client", policy.Limit{N: 100, Window: time.Minute}, policy.Decision{RetryAfter: 1200 * time.Millisecond})
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" || w.Header().Get("RateLimit-Policy") != `"per-client";q=100;w=60` ||
		w.Header().Get("RateLimit") != `"per-client";r=0;t=2` || !strings.Contains(w.Body.String(), `"error":"too_many_requests"`) {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

// BenchmarkLocalLimit is one request through a local limit, 64 clients.
func BenchmarkLocalLimit(b *testing.B) {
	l := policy.NewLocal()
	lim := policy.Limit{N: 1 << 30, Window: time.Second}
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "client-" + string(rune('A'+i))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%64], lim, time.Now())
			i++
		}
	})
}

// Check counts per client; a token naming no client (another issuer's)
// counts by its subject, not in one budget with every such token.
func TestRateLimitCheckKeys(t *testing.T) {
	rl := &policy.RateLimit{Limit: policy.Limit{N: 1, Window: time.Hour}, Local: policy.NewLocal(),
		Override: func(id string) (policy.Limit, bool) { return policy.Limit{N: 2, Window: time.Hour}, id == "big" }}
	check := func(client, sub string) policy.Outcome {
		o, _ := rl.Check(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), client, sub)
		return o
	}
	for _, c := range []struct {
		client, sub string
		want        policy.Outcome
	}{
		{"app", "mark", policy.Allowed}, {"app", "carol", policy.Refused}, // one budget per client
		{"", "mark", policy.Allowed}, {"", "carol", policy.Allowed}, {"", "mark", policy.Refused}, // no client: per subject
		{"big", "x", policy.Allowed}, {"big", "x", policy.Allowed}, {"big", "x", policy.Refused}, // its own figure
	} {
		if got := check(c.client, c.sub); got != c.want {
			t.Fatalf("%q/%q: %v, want %v", c.client, c.sub, got, c.want)
		}
	}
}
