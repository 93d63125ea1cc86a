package policy

// RFC 6585 §4 (429 Too Many Requests) and draft-ietf-httpapi-ratelimit-headers
// (the RateLimit-Policy and RateLimit fields): at most n requests per window
// for each client (or subject) of a route, n of them at once if they come
// together, refused requests counting nothing. Counted in memory on each
// instance (golang.org/x/time/rate), or in the store for all of them.

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// Limit is n requests per Window, n of them at once.
type Limit struct {
	N      int
	Window time.Duration
}

// ParseLimit reads "<n>/<window>": 100/1m, 50/1s, 1000/1h (the window a
// Go duration; a bare unit is one of it: 100/m).
func ParseLimit(s string) (Limit, error) {
	n, w, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 {
		return Limit{}, fmt.Errorf("rate limit %q must be <n>/<window> with n at least 1, such as 100/1m", s)
	}
	if w == "s" || w == "m" || w == "h" {
		w = "1" + w
	}
	window, err := time.ParseDuration(w)
	if err != nil || window < time.Millisecond {
		return Limit{}, fmt.Errorf("rate limit %q: the window must be a duration such as 1s, 1m or 1h", s)
	}
	return Limit{N: count, Window: window}, nil
}

func (l Limit) String() string { return strconv.Itoa(l.N) + "/" + windowText(l.Window) }

// windowText is a window as people write it: 1m rather than 1m0s.
func windowText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// Decision is a limit's answer to one request.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests would be let through now (0
	// when allowed by a local limit, which does not count them out).
	Remaining int
	// RetryAfter is how long until the next request is let through (0
	// when allowed).
	RetryAfter time.Duration
	// Reset is how long until the whole budget is back.
	Reset time.Duration
}

// Local counts in memory, a token bucket per key. A bucket idle long
// enough to be full again is dropped (it is the same as a new one), so
// memory follows the keys active within a window.
type Local struct {
	seed   maphash.Seed
	shards [64]localShard
}

type localShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim   *rate.Limiter
	limit Limit
	last  time.Time
}

// sweepEvery is how often a shard drops its idle buckets: memory follows
// the keys active within a minute (or a window, when longer).
const sweepEvery = time.Minute

// NewLocal is an empty Local.
func NewLocal() *Local { return &Local{seed: maphash.MakeSeed()} }

// Allow takes one request from key's bucket under limit at now; a refused
// request takes nothing.
func (l *Local) Allow(key string, limit Limit, now time.Time) Decision {
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.buckets == nil {
		sh.buckets = map[string]*bucket{}
	}
	if now.Sub(sh.swept) > sweepEvery {
		sh.sweep(now)
	}
	b := sh.buckets[key]
	if b == nil || b.limit != limit {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(float64(limit.N)/limit.Window.Seconds()), limit.N), limit: limit}
		sh.buckets[key] = b
	}
	b.last = now
	if b.lim.AllowN(now, 1) {
		// Remaining and Reset are for refusals' headers alone: the
		// common path reads the bucket once.
		return Decision{Allowed: true}
	}
	r := b.lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	r.CancelAt(now)
	return Decision{RetryAfter: delay, Reset: untilFull(b, now)}
}

// untilFull is how long b's bucket takes to fill up from now.
func untilFull(b *bucket, now time.Time) time.Duration {
	missing := float64(b.limit.N) - b.lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(b.limit.N) * float64(b.limit.Window))
}

// sweep drops the buckets full again by now.
func (sh *localShard) sweep(now time.Time) {
	for k, b := range sh.buckets {
		if now.Sub(b.last) >= b.limit.Window {
			delete(sh.buckets, k)
		}
	}
	sh.swept = now
}

// Len is how many buckets are held, for tests and metrics.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

// Shared counts in the store, for every instance: one round trip per
// request.
type Shared struct {
	Store store.RateStore
}

// Allow takes one request from key's budget under limit.
func (s Shared) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	r, err := s.Store.AllowRate(ctx, StoreKey(key), limit.N, limit.Window)
	if err != nil {
		return Decision{}, err
	}
	return Decision{Allowed: r.Allowed, Remaining: r.Remaining, RetryAfter: r.RetryAfter, Reset: r.ResetAfter}, nil
}

// StoreKey is the store's key of a budget: a hash, so that no client ID or
// subject (or anything else a caller chose) is a store key.
func StoreKey(key string) string { return "rl:" + oauth.HashToken(key) }

// RetryAfter is Retry-After's whole seconds for a wait of d: rounded up,
// at least 1.
func RetryAfter(d time.Duration) int64 { return max(int64(math.Ceil(d.Seconds())), 1) }

// TooMany is the RFC 6749-style error of a request over limit, to come
// back after retry seconds.
func TooMany(what string, limit Limit, retry int64) *oauth.Error {
	return oauth.NewError("too_many_requests", http.StatusTooManyRequests, "over %s of %d requests per %s: retry after %d seconds",
		what, limit.N, windowText(limit.Window), retry)
}

// WriteTooMany answers a refused request: 429 with Retry-After,
// RateLimit-Policy and RateLimit naming the policy, and the JSON error.
func WriteTooMany(w http.ResponseWriter, policy string, limit Limit, d Decision) {
	h := w.Header()
	retry := RetryAfter(d.RetryAfter)
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", policy, limit.N, int64(math.Ceil(limit.Window.Seconds()))))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", policy, d.Remaining, retry))
	oauth.WriteError(w, TooMany("the rate limit", limit, retry))
}

// RateLimit is a route's rate_limit: its figure, for each client or each
// subject of the tokens it takes, counted on this instance or in the
// store.
type RateLimit struct {
	Limit Limit
	// PerSubject counts by the token's subject instead of its client.
	PerSubject bool
	// Line is the route's rate_limit line: with the client (or subject),
	// it keys the shared budget, so that instances with the same
	// configuration share it.
	Line string
	// Local counts on this instance; Shared, when set, in the store.
	Local  *Local
	Shared *Shared
	// DenyOnStoreError refuses (503) when the store cannot count; by
	// default the request goes through.
	DenyOnStoreError bool
	// Override is a client's own figure, in place of Limit for it.
	Override func(clientID string) (Limit, bool)
}

// Outcome is what Check did with a request.
type Outcome int

const (
	// Allowed: within the limit; the caller goes on.
	Allowed Outcome = iota
	// Refused: over it; 429 was written.
	Refused
	// StoreDown: the store could not count; with DenyOnStoreError 503
	// was written, else the caller goes on.
	StoreDown
)

// Check counts a request whose token (client clientID, subject sub)
// passed, and answers it when it may not go on. StoreDown comes with the
// store's error, for the log.
func (rl *RateLimit) Check(w http.ResponseWriter, r *http.Request, clientID, sub string) (Outcome, error) {
	limit := rl.Limit
	if rl.Override != nil {
		if l, ok := rl.Override(clientID); ok {
			limit = l
		}
	}
	// A route counts per client or per subject, never both: the ID alone
	// keys its local buckets.
	who, policy := clientID, "per-client"
	switch {
	case rl.PerSubject:
		who, policy = sub, "per-subject"
	case clientID == "":
		// Another issuer's token may name no client: it counts by its
		// subject rather than in one budget with every such token.
		who = "\x00" + sub
	}
	var d Decision
	if rl.Shared != nil {
		var err error
		if d, err = rl.Shared.Allow(r.Context(), rl.Line+"\x00"+limit.String()+"\x00"+who, limit); err != nil {
			if rl.DenyOnStoreError {
				oauth.WriteError(w, oauth.ErrTemporarilyUnavailable("the rate limit cannot be counted right now: retry shortly"))
			}
			return StoreDown, err
		}
	} else {
		d = rl.Local.Allow(who, limit, time.Now())
	}
	if d.Allowed {
		return Allowed, nil
	}
	WriteTooMany(w, policy, limit, d)
	return Refused, nil
}
