package test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/internal/redistest"
)

// dataLossCaddyfile: the device set-up plus the gateway's reader client.
var dataLossCaddyfile = strings.Replace(deviceCaddyfile, "\t\tclient tv {", `		client reader {
			secret_hash $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
			grant client_credentials
			scope read
		}
		client tv {`, 1)

// emptyKeyMAC is the MAC the session and CSRF checks would accept if they
// ran with an empty key: what an attacker makes once the store lost the
// cookie secret.
func emptyKeyMAC(parts ...string) string {
	m := hmac.New(sha256.New, nil)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// forgedDeviceApproval tries to approve a device authorization as mark
// with a session cookie and CSRF token made with an empty key; it returns
// the device code, which must not get a token.
func forgedDeviceApproval(t *testing.T, g *gateway) string {
	t.Helper()
	resp, err := http.PostForm(g.AuthURL()+"/oauth/device", url.Values{"client_id": {"tv"}, "scope": {"read"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("device authorization: %d %v", resp.StatusCode, m)
	}
	now := time.Now().Unix()
	raw, _ := json.Marshal(map[string]any{"sid": "attacker", "sub": "mark", "auth_time": now, "exp": now + 600})
	payload := base64.RawURLEncoding.EncodeToString(raw)
	form := url.Values{"user_code": {m["user_code"].(string)}, "csrf_token": {emptyKeyMAC("csrf", "attacker")}, "decision": {"approve"}}
	req, _ := http.NewRequest("POST", g.AuthURL()+"/device", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "tokengate_session", Value: payload + "." + emptyKeyMAC("session", payload)})
	resp, body := doNoFollow(t, req)
	if resp.StatusCode == 200 && strings.Contains(body, "Device connected") {
		t.Errorf("a session forged with an empty key approved a device")
	}
	return m["device_code"].(string)
}

func doNoFollow(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// waitFor polls cond every 100 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// Redis comes back empty under a running instance (findings 1 and 2 of the
// adversarial review): the instance writes its key ring and revocations
// back, a revoked token stays revoked, tokens keep their keys, and nobody
// can forge a session with the empty key the lost ring would have left.
func TestStoreDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: "store redis {\n\t\t\taddress " + srv.URL + "\n\t\t\tprefix " + prefix + "\n\t\t}"})
	g.start(dataLossCaddyfile)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	revoked := token(t, g)
	if st := callAPI(t, g, revoked); st != 200 {
		t.Fatalf("API before revocation: %d", st)
	}
	if status, _ := postForm(t, g.AuthURL()+"/oauth/revoke", url.Values{"token": {revoked}}, "reader", readerSecret); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if st := callAPI(t, g, revoked); st != 401 {
		t.Fatalf("API after revocation: %d", st)
	}
	kids := jwksKids(t, g)

	srv.RestartEmpty()
	// Long enough for the old code to have installed the empty ring.
	time.Sleep(1500 * time.Millisecond)
	code := forgedDeviceApproval(t, g)

	ctx := context.Background()
	restored := waitFor(10*time.Second, func() bool {
		ring, _ := rdb.HGet(ctx, prefix+"keys", "d").Result()
		n, _ := rdb.HLen(ctx, prefix+"{revocations}").Result()
		return strings.Contains(ring, kids[0]) && n >= 1
	})
	if !restored {
		t.Fatalf("the key ring and revocations were not written back to the emptied store\n%s", g.log)
	}
	if st := callAPI(t, g, revoked); st != 401 {
		t.Errorf("a revoked token is accepted again after the store lost its data: %d", st)
	}
	// Service resumes on the same keys, without a restart.
	fresh := token(t, g)
	if kid := kidOf(t, fresh); kid != kids[0] {
		t.Errorf("tokens after the loss are signed by %s, want the same key %s", kid, kids[0])
	}
	if st := callAPI(t, g, fresh); st != 200 {
		t.Errorf("a new token after the loss: %d", st)
	}
	// The forged approval gave the attacker nothing.
	resp, err := http.PostForm(g.AuthURL()+"/oauth/token", url.Values{"client_id": {"tv"}, "device_code": {code},
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}})
	if err != nil {
		t.Fatal(err)
	}
	var poll map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&poll)
	resp.Body.Close()
	if poll["error"] != "authorization_pending" {
		t.Errorf("the device code after a forged approval: %d %v, want authorization_pending", resp.StatusCode, poll)
	}
	// A person with a real session still gets through /login (the cookie
	// secret came back).
	if st, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/device"); st.StatusCode != 200 {
		t.Errorf("device page: %d", st.StatusCode)
	}
	log := g.log.String()
	if !strings.Contains(log, "the store lost the signing key ring") || !strings.Contains(log, "the store lost its data") {
		t.Errorf("the loss was not logged as an error:\n%s", log)
	}
	body := scrape(t, g)
	for _, what := range []string{"key ring", "data"} {
		if metric(body, `tokengate_store_data_loss_total{what="`+what+`"}`) < 1 {
			t.Errorf("tokengate_store_data_loss_total{what=%q} not counted:\n%s", what, grepLines(body, "tokengate_store"))
		}
	}
	if h := health(t, g); h != 200 {
		t.Errorf("health after repair: %d", h)
	}
}

func health(t *testing.T, g *gateway) int {
	t.Helper()
	resp, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/oauth/health")
	return resp.StatusCode
}

// A Redis that can lose data is named at start-up: eviction and no
// persistence.
func TestRedisDataLossWarnings(t *testing.T) {
	srv := redistest.StartArgs(t, "--appendonly", "no", "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	up := newUpstream(t)
	g := startGateway(t, up, redisStoreLine(t, srv))
	log := g.log.String()
	for _, want := range []string{"maxmemory-policy is allkeys-lru", "persistence is off"} {
		if !strings.Contains(log, want) {
			t.Errorf("no warning %q at start-up:\n%s", want, log)
		}
	}
}

// A person removed from the configuration is cut off by the reload that
// removes them: access tokens, refresh tokens and the browser session.
func TestOffboarding(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		withAlice := strings.Replace(authCodeCaddyfile, "\t\tuser mark ", "\t\tuser alice $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe\n\t\tuser mark ", 1)
		g.start(withAlice)
		ctx := context.Background()
		cfg := oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback", "read")
		alice, mark := persontest.New("alice", markPassword), persontest.New("mark", markPassword)
		tokens := map[string]*oauth2.Token{}
		for name, p := range map[string]*persontest.Person{"alice": alice, "mark": mark} {
			verifier := oauth2.GenerateVerifier()
			tok, err := cfg.Exchange(ctx, authorize(t, g, p, cfg, verifier), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			tokens[name] = tok
			if st := callAPI(t, g, tok.AccessToken); st != 200 {
				t.Fatalf("%s's token: %d", name, st)
			}
		}

		g.reload(t, authCodeCaddyfile)
		if st := callAPI(t, g, tokens["alice"].AccessToken); st != 401 {
			t.Errorf("alice's access token after she was removed: %d, want 401", st)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tokens["alice"].RefreshToken}).Token(); err == nil {
			t.Error("alice's refresh token still works after she was removed")
		}
		res, err := alice.Get(cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		if res.Redirect != nil || res.Page == nil || !strings.Contains(res.Page.Body, `name="password"`) {
			t.Errorf("alice's session after she was removed: redirect %v, want the sign-in page", res.Redirect)
		}
		// Everyone else carries on.
		if st := callAPI(t, g, tokens["mark"].AccessToken); st != 200 {
			t.Errorf("mark's token after alice was removed: %d", st)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tokens["mark"].RefreshToken}).Token(); err != nil {
			t.Errorf("mark's refresh after alice was removed: %v", err)
		}
		if !strings.Contains(g.log.String(), `"msg":"user offboarded","sub":"alice"`) {
			t.Errorf("no audit line for alice's removal")
		}
	})
}

// A client minting and revoking tokens at full speed, with Redis restarted
// empty halfway, leaves every instance's revocation state (and Redis's)
// flat: past its budget a client's revocations collapse into one cut-off.
func TestRevocationAbuseStaysBounded(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: "store redis {\n\t\t\taddress " + srv.URL + "\n\t\t\tprefix " + prefix + "\n\t\t}"})
	g.start(gatewayCaddyfile, "WRITER_SECRET="+writerSecret)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	var revoked atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				tok, err := ccConfig(g, "writer", writerSecret, oauth2.AuthStyleInHeader).Token(ctx)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // Redis restarting
					continue
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", g.AuthURL()+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("writer", writerSecret)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						revoked.Add(1)
					}
				}
			}
		})
	}
	state := func() (entries, bytes float64) {
		body := scrape(t, g)
		for _, kind := range []string{"token", "grant", "client", "subject"} {
			entries += metric(body, `tokengate_revocations{kind="`+kind+`"}`)
		}
		return entries, metric(body, "tokengate_revocations_bytes")
	}
	time.Sleep(2 * time.Second)
	srv.RestartEmpty()
	time.Sleep(2500 * time.Millisecond)
	midEntries, midBytes := state()
	wg.Wait()
	endEntries, endBytes := state()
	stored, _ := rdb.HLen(context.Background(), prefix+"{revocations}").Result()
	t.Logf("revoked %d tokens in 7 s; revocation state at 4.5 s: %v entries, %v bytes; at 7 s: %v entries, %v bytes; Redis holds %d",
		revoked.Load(), midEntries, midBytes, endEntries, endBytes, stored)
	if revoked.Load() < 500 {
		t.Fatalf("only %d revocations: the test did not load the endpoint", revoked.Load())
	}
	// Two budgets at most: one before the restart emptied the counters, one after.
	const bound = 2*100 + 5
	if endEntries > bound || stored > bound || endEntries != midEntries || endBytes != midBytes {
		t.Errorf("revocation state grows under abuse: %v entries (%v at 4.5 s), %d in Redis, want flat and at most %d", endEntries, midEntries, stored, bound)
	}
	if endBytes <= 0 || endBytes > bound*200 {
		t.Errorf("tokengate_revocations_bytes = %v", endBytes)
	}
}

// bearer_auth without audience, in front of an issuer whose clients have
// audiences, says at start-up that it takes tokens for any API.
func TestBearerAuthWithoutAudienceWarns(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, up, "store file")
	if !strings.Contains(g.log.String(), "bearer_auth has no audience") {
		t.Errorf("no warning for bearer_auth without audience:\n%s", g.log)
	}
	named := strings.ReplaceAll(gatewayCaddyfile, "bearer_auth read {\n", "bearer_auth read {\n\t\taudience http://127.0.0.1:{{.API}}\n")
	named = strings.ReplaceAll(named, "bearer_auth @writes write\n", "bearer_auth @writes {\n\t\tscope write\n\t\taudience http://127.0.0.1:{{.API}}\n\t}\n")
	g2 := newGateway(t, Ports{Upstream: up.Addr()})
	g2.start(named, "WRITER_SECRET="+writerSecret)
	if strings.Contains(g2.log.String(), "bearer_auth has no audience") {
		t.Errorf("a warning although every bearer_auth names its audience:\n%s", g2.log)
	}
}

// The README's access log filter keeps authorization codes out of Caddy's
// access log, which otherwise records them in the Location header.
func TestAccessLogFilterDropsCodes(t *testing.T) {
	up := newUpstream(t)
	filtered := strings.Replace(authCodeCaddyfile+"", "http://127.0.0.1:{{.Auth}} {\n\toauth2_server\n}",
		"http://127.0.0.1:{{.Auth}} {\n\tlog {\n\t\tformat filter {\n\t\t\twrap json\n\t\t\tfields {\n\t\t\t\tresp_headers>Location delete\n\t\t\t}\n\t\t}\n\t}\n\toauth2_server\n}", 1)
	if filtered == authCodeCaddyfile {
		t.Fatal("the auth site was not found in the template")
	}
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(filtered)
	cfg := oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback", "read")
	code := authorize(t, g, persontest.New("mark", markPassword), cfg, oauth2.GenerateVerifier())
	waitFor(2*time.Second, func() bool { return strings.Contains(g.log.String(), `"uri":"/consent`) })
	log := g.log.String()
	if !strings.Contains(log, `"logger":"http.log.access`) {
		t.Fatalf("no access log lines:\n%s", log)
	}
	if strings.Contains(log, code) || strings.Contains(log, code[strings.Index(code, ".")+1:]) {
		t.Errorf("the access log holds the authorization code")
	}
}

// Checking a configuration (`tokengate validate`) offboards nobody: only a
// running instance acts on a removed user.
func TestValidateOffboardsNobody(t *testing.T) {
	srv := redistest.Start(t)
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: redisStoreLine(t, srv)})
	withAlice := strings.Replace(authCodeCaddyfile, "\t\tuser mark ", "\t\tuser alice $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe\n\t\tuser mark ", 1)
	g.start(withAlice)
	cfg := oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback", "read")
	verifier := oauth2.GenerateVerifier()
	tok, err := cfg.Exchange(context.Background(), authorize(t, g, persontest.New("alice", markPassword), cfg, verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	other := newGateway(t, Ports{Upstream: up.Addr(), Store: g.Ports.Store})
	path := g.dir + "/Caddyfile.check"
	writeFile(t, path, render(t, authCodeCaddyfile, other.Ports))
	if out, err := run(t, []string{"HOME=" + g.dir}, "validate", "--config", path, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	time.Sleep(1500 * time.Millisecond) // a revocation would have reached the instance
	if st := callAPI(t, g, tok.AccessToken); st != 200 {
		t.Fatalf("alice's token after a validate without her: %d", st)
	}
}
