package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/internal/redistest"
)

// scrape reads Caddy's metrics endpoint on the admin API.
func scrape(t *testing.T, g *gateway) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + itoa(g.Ports.Admin) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	return string(body)
}

// metric is the value of one series (name with its labels, as exposed:
// sorted by label name), or -1 when absent.
func metric(body, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// The metrics the README lists, on Caddy's /metrics, through a reload that
// must neither fail on registering them again nor reset them.
func TestMetrics(t *testing.T) {
	srv := redistest.Start(t)
	up := newUpstream(t)
	g := startGateway(t, up, redisStoreLine(t, srv))

	tok := token(t, g)
	if _, err := ccConfig(g, "reader", "wrong", oauth2.AuthStyleInHeader).Token(context.Background()); err == nil {
		t.Fatal("a wrong secret got a token")
	}
	callAPI(t, g, tok)
	callAPI(t, g, tok)
	callAPI(t, g, "not-a-token")
	get(t, http.DefaultClient, "GET", g.APIURL()+"/x")
	get(t, http.DefaultClient, "POST", g.APIURL()+"/x", "Authorization", "Bearer "+tok) // needs write
	// A store error: an unknown client is looked up in the store.
	srv.Stop()
	ccConfig(g, "registered-later", "x", oauth2.AuthStyleInHeader).Token(context.Background())
	srv.Resume()
	if out, err := g.cli(t, "revoke", "--token", tok); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}

	want := map[string]float64{
		`tokengate_tokens_issued_total{client_id="reader",grant_type="client_credentials"}`: 1,
		`tokengate_token_errors_total{error="invalid_client"}`:                              1,
		`tokengate_token_errors_total{error="temporarily_unavailable"}`:                     1,
		`tokengate_bearer_checks_total{outcome="ok"}`:                                       2,
		`tokengate_bearer_checks_total{outcome="invalid"}`:                                  1,
		`tokengate_bearer_checks_total{outcome="missing"}`:                                  1,
		`tokengate_bearer_checks_total{outcome="insufficient_scope"}`:                       1,
		`tokengate_endpoint_duration_seconds_count{endpoint="/oauth/token"}`:                3,
		`tokengate_revocations{kind="token"}`:                                               1,
		`tokengate_revocations{kind="client"}`:                                              0,
	}
	check := func(body string) {
		t.Helper()
		for series, v := range want {
			if got := metric(body, series); got != v {
				t.Errorf("%s = %v, want %v", series, got, v)
			}
		}
		if metric(body, `tokengate_store_errors_total{operation="looking up a client"}`) < 1 {
			t.Errorf("no store error counted:\n%s", grepLines(body, "tokengate_store"))
		}
		if age := metric(body, "tokengate_revocations_age_seconds"); age < 0 || age > 5 {
			t.Errorf("revocation state age %v", age)
		}
	}
	// The revocation reaches the in-memory state through the store's feed.
	deadline := time.Now().Add(5 * time.Second)
	for metric(scrape(t, g), `tokengate_revocations{kind="token"}`) != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	check(scrape(t, g))
	if t.Failed() {
		t.Logf("metrics:\n%s", grepLines(scrape(t, g), "tokengate_"))
	}

	// Reload with another client: same counts, and the new config's
	// registry has them.
	reloaded := strings.Replace(gatewayCaddyfile, "\t\tclient reader {", "\t\tclient extra {\n\t\t\tsecret extra-secret\n\t\t\tgrant client_credentials\n\t\t\tscope read\n\t\t}\n\t\tclient reader {", 1)
	g.reload(t, reloaded, "WRITER_SECRET="+writerSecret)
	check(scrape(t, g))
	if _, err := ccConfig(g, "extra", "extra-secret", oauth2.AuthStyleInHeader).Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metric(scrape(t, g), `tokengate_tokens_issued_total{client_id="extra",grant_type="client_credentials"}`); got != 1 {
		t.Errorf("tokens of the reloaded config's client: %v", got)
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Scheduled rotation across two instances on one Redis: the next key is
// published before it signs, tokens from before and after pass on both,
// and each rotation is made by exactly one instance.
func TestScheduledKeyRotationAcrossInstances(t *testing.T) {
	// The next key is published 3 s before it signs: instances check every
	// second, and B learns of it within another.
	const every = 12 * time.Second
	a, b, _, _ := twoInstancesOf(t, strings.Replace(gatewayCaddyfile, "\t\t{{.Store}}\n", "\t\t{{.Store}}\n\t\tkey_rotation 12s\n", 1))

	before := token(t, a)
	first := kidOf(t, before)
	// The next key appears in B's JWK Set while tokens are still signed
	// with the first.
	deadline := time.Now().Add(2 * every)
	for len(jwksKids(t, b)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no next key published: %v", jwksKids(t, b))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if kid := kidOf(t, token(t, b)); kid != first {
		t.Fatalf("the next key signed as soon as it was published")
	}
	var after string
	for after == "" || kidOf(t, after) == first {
		if time.Now().After(deadline) {
			t.Fatal("the next key never signed")
		}
		time.Sleep(100 * time.Millisecond)
		after = token(t, a)
	}
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		for when, tok := range map[string]string{"before": before, "after": after} {
			if code := callAPI(t, g, tok); code != 200 {
				t.Errorf("%s refused the token from %s the rotation: %d", name, when, code)
			}
		}
	}
	// One audit line per rotation (a key of each algorithm), across both
	// instances' logs.
	for try := 0; ; try++ {
		kids := jwksKids(t, a)
		lines := strings.Count(a.log.String(), `"msg":"signing keys rotated"`) + strings.Count(b.log.String(), `"msg":"signing keys rotated"`)
		if lines == len(kids)/2-1 && slices.Equal(kids, jwksKids(t, a)) {
			break
		}
		if try == 5 {
			t.Fatalf("%d rotations logged for %d keys: two instances rotated at once", lines, len(kids))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The health endpoint for load balancers follows the store.
func TestHealth(t *testing.T) {
	srv := redistest.Start(t)
	g := startGateway(t, newUpstream(t), redisStoreLine(t, srv))
	health := func() (int, string) {
		resp, body := get(t, http.DefaultClient, "GET", g.AuthURL()+"/oauth/health")
		return resp.StatusCode, body
	}
	waitFor := func(want int) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := health()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("health %d %s, want %d", code, body, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if body := waitFor(200); body != `{"status":"ok"}`+"\n" {
		t.Fatalf("healthy body %q", body)
	}
	if resp, _ := get(t, http.DefaultClient, "HEAD", g.AuthURL()+"/oauth/health"); resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	if resp, _ := get(t, http.DefaultClient, "POST", g.AuthURL()+"/oauth/health"); resp.StatusCode != 405 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	srv.Stop()
	if body := waitFor(503); !strings.Contains(body, `"reason":"the store is unreachable"`) {
		t.Fatalf("unhealthy body %q", body)
	}
	srv.Resume()
	waitFor(200)
}

// tokengate reload with a new client and changed scopes, under load: no
// request fails, refresh tokens and revocations made before still hold,
// and the keys stay the same.
func TestReloadUnderLoad(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(auditCaddyfile)
		kids := jwksKids(t, g)
		revoked := token(t, g)
		if out, err := g.cli(t, "revoke", "--token", revoked); err != nil {
			t.Fatalf("revoke: %v\n%s", err, out)
		}
		p := persontest.New("mark", markPassword)
		grants := []string{codeFlowTokens(t, g, p).RefreshToken, codeFlowTokens(t, g, p).RefreshToken}
		steady := token(t, g)

		// At a reload Caddy binds a new socket (SO_REUSEPORT) and closes
		// the old one: a connection still in the old socket's accept queue
		// is reset, and idle keep-alive connections are closed. Those are
		// connection errors before any answer; the load's client retries
		// them once, as a load balancer would, and counts them. Any HTTP
		// error is a failure.
		var retried atomic.Int64
		fresh := &http.Client{Transport: retryConnErrors{http.DefaultTransport.(*http.Transport).Clone(), &retried}, Timeout: 10 * time.Second}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, fresh)
		var requests atomic.Int64
		var mu sync.Mutex
		var failures []string
		fail := func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		loop := func(do func()) {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						do()
						requests.Add(1)
					}
				}
			})
		}
		for range 2 {
			loop(func() {
				tok, err := ccConfig(g, "reader", readerSecret, oauth2.AuthStyleInHeader).Token(ctx)
				if err != nil {
					fail("client credentials: %v", err)
					return
				}
				if code := apiStatus(fresh, g, tok.AccessToken); code != 200 {
					fail("API with a new token: %d", code)
				}
			})
			loop(func() {
				if code := apiStatus(fresh, g, steady); code != 200 {
					fail("API with a steady token: %d", code)
				}
			})
		}
		for i := range grants {
			loop(func() {
				tok, status, code := refreshWith(ctx, g, grants[i])
				if status != 200 {
					fail("refresh: %d %s", status, code)
					return
				}
				grants[i] = tok.RefreshToken
			})
		}
		time.Sleep(time.Second)
		reloaded := strings.Replace(auditCaddyfile, "\t\tclient reader {\n\t\t\tsecret_hash", "\t\tclient extra {\n\t\t\tsecret extra-secret\n\t\t\tgrant client_credentials\n\t\t\tscope read\n\t\t}\n\t\tclient reader {\n\t\t\tsecret_hash", 1)
		reloaded = strings.Replace(reloaded, "\t\t\tgrant client_credentials\n\t\t\tscope read\n\t\t}\n\t\tclient droplet", "\t\t\tgrant client_credentials\n\t\t\tscope read write\n\t\t}\n\t\tclient droplet", 1)
		if reloaded == auditCaddyfile || strings.Count(reloaded, "scope read write") != 2 {
			t.Fatal("the test's config change did not apply")
		}
		g.reload(t, reloaded)
		time.Sleep(1500 * time.Millisecond)
		close(stop)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d of %d requests failed across the reload, e.g.:\n%s", len(failures), requests.Load(), strings.Join(failures[:min(5, len(failures))], "\n"))
		}

		// The new config is in force; what was stored carries over.
		if _, err := ccConfig(g, "extra", "extra-secret", oauth2.AuthStyleInHeader).Token(context.Background()); err != nil {
			t.Fatalf("the reload's new client: %v", err)
		}
		if tok, err := ccConfig(g, "reader", readerSecret, oauth2.AuthStyleInHeader, "write").Token(context.Background()); err != nil || tok.Extra("scope") != "write" {
			t.Fatalf("the reload's new scope: %v", err)
		}
		if code := callAPI(t, g, revoked); code != 401 {
			t.Fatalf("a token revoked before the reload: %d", code)
		}
		for _, rt := range grants {
			if _, status, code := refresh(g, rt); status != 200 {
				t.Fatalf("a refresh token from before the reload: %d %s", status, code)
			}
		}
		if after := jwksKids(t, g); !slices.Equal(after, kids) {
			t.Fatalf("keys %v after the reload, %v before", after, kids)
		}
		t.Logf("%d requests across the reload; %d connection errors retried", requests.Load(), retried.Load())
	})
}

// retryConnErrors retries a request that got no answer at all, up to
// twice, each time on a new connection: after a reload every idle
// keep-alive connection in the pool is stale, so a retry that reused
// another would meet the same close.
type retryConnErrors struct {
	base    *http.Transport
	retried *atomic.Int64
}

func (r retryConnErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	for try := 0; try < 2 && err != nil && req.Context().Err() == nil; try++ {
		again := req.Clone(req.Context())
		if req.GetBody != nil {
			if again.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		r.base.CloseIdleConnections()
		r.retried.Add(1)
		resp, err = r.base.RoundTrip(again)
	}
	return resp, err
}

// apiStatus calls the API with tok through c: the status, or 0.
func apiStatus(c *http.Client, g *gateway, tok string) int {
	req, _ := http.NewRequest("GET", g.APIURL()+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Every metric the shipped Grafana dashboard queries is in a real scrape of
// an instance that issued a token, refused one, checked bearer tokens and
// met a store error.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	srv := redistest.Start(t)
	up := newUpstream(t)
	g := startGateway(t, up, redisStoreLine(t, srv))
	callAPI(t, g, token(t, g))
	ccConfig(g, "reader", "wrong", oauth2.AuthStyleInHeader).Token(context.Background())
	srv.Stop()
	ccConfig(g, "registered-later", "x", oauth2.AuthStyleInHeader).Token(context.Background())
	srv.Resume()
	body := scrape(t, g)
	names := regexp.MustCompile(`tokengate_[a-z_]+`)
	seen := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, name := range names.FindAllString(target.Expr, -1) {
				seen++
				if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(body) {
					t.Errorf("panel %q queries %s, which the scrape does not have", p.Title, name)
				}
			}
		}
	}
	if seen < 10 {
		t.Fatalf("the dashboard names only %d metrics", seen)
	}
}

// A reload does not reset the guessing limit on a configured client's
// secret: the secret checker belongs to the process, as the store does.
func TestReloadKeepsSecretGuessingLimit(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(auditCaddyfile)
	for range 20 {
		if _, err := ccConfig(g, "reader", "guess", oauth2.AuthStyleInHeader).Token(context.Background()); err == nil {
			t.Fatal("a wrong secret was accepted")
		}
	}
	locked := func() bool {
		_, err := ccConfig(g, "reader", readerSecret, oauth2.AuthStyleInHeader).Token(context.Background())
		return err != nil && strings.Contains(err.Error(), "too many failed authentications")
	}
	if !locked() {
		t.Fatal("20 wrong secrets from one address did not lock it out")
	}
	g.reload(t, strings.Replace(auditCaddyfile, "device_interval 1s", "device_interval 2s", 1))
	if !locked() {
		t.Fatal("a reload let the address guess again")
	}
}
