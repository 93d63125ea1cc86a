package test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/internal/redistest"
)

// clusterStoreLine and sentinelStoreLine are the Caddyfile store lines of
// README's "Redis Cluster and Sentinel".
func clusterStoreLine(t *testing.T, c *redistest.Cluster) string {
	var addrs []string
	for _, a := range c.Addrs {
		addrs = append(addrs, "redis://"+a)
	}
	return "store redis {\n\t\t\taddress " + strings.Join(addrs, " ") + "\n\t\t\tprefix " + redistest.Prefix(t) + "\n\t\t}"
}

func sentinelStoreLine(t *testing.T, s *redistest.Sentinel) string {
	return "store redis {\n\t\t\taddress redis://" + s.Addrs[0] + "\n\t\t\tmaster_name " + s.MasterName +
		"\n\t\t\twait_replicas 1\n\t\t\tprefix " + redistest.Prefix(t) + "\n\t\t}"
}

// codeFlowTokens runs the authorization code flow for droplet as mark.
func codeFlowTokens(t *testing.T, g *gateway, p *persontest.Person) *oauth2.Token {
	t.Helper()
	cfg := oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback", "read", "write")
	verifier := oauth2.GenerateVerifier()
	tok, err := cfg.Exchange(context.Background(), authorize(t, g, p, cfg, verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refresh redeems a refresh token as droplet: the new tokens, or the HTTP
// status and OAuth error.
func refresh(g *gateway, rt string) (*oauth2.Token, int, string) {
	return refreshWith(context.Background(), g, rt)
}

// refreshWith is refresh with ctx, which may carry the HTTP client.
func refreshWith(ctx context.Context, g *gateway, rt string) (*oauth2.Token, int, string) {
	cfg := oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback")
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if asRetrieveError(err, &re) {
			return nil, re.Response.StatusCode, re.ErrorCode
		}
		return nil, 0, err.Error()
	}
	return tok, http.StatusOK, ""
}

// The token flows through the real binary on a three-master Cluster and on
// Sentinel: code, refresh, API call, revocation reaching bearer_auth.
func TestTopologies(t *testing.T) {
	for _, topo := range []struct {
		name string
		line func(t *testing.T) string
	}{
		{"cluster", func(t *testing.T) string { return clusterStoreLine(t, redistest.StartCluster(t)) }},
		{"sentinel", func(t *testing.T) string { return sentinelStoreLine(t, redistest.StartSentinel(t)) }},
	} {
		t.Run(topo.name, func(t *testing.T) {
			up := newUpstream(t)
			g := newGateway(t, Ports{Upstream: up.Addr(), Store: topo.line(t)})
			g.start(authCodeCaddyfile)
			tok := codeFlowTokens(t, g, persontest.New("mark", markPassword))
			next, status, code := refresh(g, tok.RefreshToken)
			if status != 200 {
				t.Fatalf("refresh: %d %s", status, code)
			}
			if resp, body := get(t, http.DefaultClient, "GET", g.APIURL()+"/x", "Authorization", "Bearer "+next.AccessToken); resp.StatusCode != 200 {
				t.Fatalf("API: %d %s %s", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
			}
			if out, err := g.cli(t, "revoke", "--subject", "mark"); err != nil {
				t.Fatalf("revoke: %v\n%s", err, out)
			}
			deadline := time.Now().Add(5 * time.Second)
			for callAPI(t, g, next.AccessToken) != 401 {
				if time.Now().After(deadline) {
					t.Fatal("a revoked token still passes")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// A Sentinel failover while clients keep refreshing: requests may fail
// for a moment (503), but every refresh token a client was given still
// works afterwards, and no grant is revoked for a reuse that never was.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	s := redistest.StartSentinel(t)
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: sentinelStoreLine(t, s)})
	g.start(authCodeCaddyfile)

	const workers = 8
	p := persontest.New("mark", markPassword)
	latest := make([]string, workers)
	for i := range latest {
		latest[i] = codeFlowTokens(t, g, p).RefreshToken
	}
	var ok, unavailable atomic.Int64
	var mu sync.Mutex
	var bad []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, status, code := refresh(g, latest[w])
				switch {
				case status == 200:
					latest[w] = tok.RefreshToken
					ok.Add(1)
				case status == 503:
					unavailable.Add(1)
					time.Sleep(50 * time.Millisecond)
				default:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("worker %d: %d %s", w, status, code))
					mu.Unlock()
					return
				}
			}
		})
	}
	time.Sleep(time.Second)
	before := ok.Load()
	s.Failover(t)
	failedOver := ok.Load()
	// With one replica, the new master has none until the sentinel turns
	// the old master into its replica (about ten seconds): writes wait
	// for it, and the gateway answers 503 until then.
	for deadline := time.Now().Add(30 * time.Second); ok.Load() < failedOver+4*workers && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("refreshes refused during the failover:\n%s", strings.Join(bad, "\n"))
	}
	if before == 0 || ok.Load() == failedOver {
		t.Fatalf("refreshes: %d before the failover, %d by its end, %d in all (%d answered 503): the gateway did not recover\n%s", before, failedOver, ok.Load(), unavailable.Load(), g.log.String()[max(0, len(g.log.String())-3000):])
	}
	for w, rt := range latest {
		if _, status, code := refresh(g, rt); status != 200 {
			t.Errorf("worker %d's last refresh token was lost: %d %s", w, status, code)
		}
	}
	t.Logf("%d refreshes, %d answered 503 during the failover", ok.Load(), unavailable.Load())
}
