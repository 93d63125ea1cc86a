package authserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/internal/persontest"
)

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Script and file URIs are no place to send a code, nor are private-use
// schemes that are nobody's reverse domain name (RFC 8252 §7.1).
func TestDangerousRedirectURIsRefused(t *testing.T) {
	for _, uri := range []string{"javascript:alert(document.domain)//", "JavaScript://x/%0aalert(1)", "data:text/html,<script>x</script>",
		"vbscript:msgbox", "file:///etc/passwd", "myapp:/callback", "about:blank"} {
		c := &client.Client{ID: "evil", GrantTypes: []string{client.GrantAuthorizationCode}, Public: true, RedirectURIs: []string{uri}}
		err := client.Validate(c)
		if err == nil || !strings.Contains(err.Error(), "client evil: redirect_uri") {
			t.Errorf("%s: %v", uri, err)
		}
	}
	e := newEnv(t)
	_, err := e.srv.Admin().RegisterClient(t.Context(), &client.Info{Name: "Evil", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"javascript:alert(1)//"}, Public: true})
	var ae *oauth.Error
	if err == nil || !errors.As(err, &ae) || ae.Code != "invalid_request" {
		t.Fatalf("admin registration of a javascript: URI: %v", err)
	}
}

// The redirect back to the client has a Location and nothing else: no HTML
// link a browser could show for it.
func TestRedirectHasNoBody(t *testing.T) {
	e := newEnv(t)
	resp, err := noFollow.Get(e.authURL("response_type", "token", "client_id", "webapp", "redirect_uri", "https://app.example.com/cb", "state", "xyz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example.com/cb?") {
		t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(body) != 0 {
		t.Fatalf("redirect body %q, want none", body)
	}
}

// Client IDs and usernames are one namespace: a client's tokens carry its
// ID as sub.
func TestClientIDCannotBeAUsername(t *testing.T) {
	clients := []*client.Client{{ID: "alice", SecretHash: client.HashSecretSHA256("x"), GrantTypes: []string{client.GrantClientCredentials}}}
	users := []*web.User{{Username: "alice", PasswordHash: bcryptHash(t, "pw")}}
	err := authserver.ValidateClientsAndUsers(clients, users)
	if err == nil || !strings.Contains(err.Error(), "client alice has the same name as user alice") {
		t.Fatalf("clash: %v", err)
	}
	// A registered client of that name makes the configuration's user clash.
	st := openStore(t)
	if err := st.PutClient(t.Context(), &client.Client{ID: "mark", Name: "m", SecretHash: client.HashSecretSHA256("x"),
		GrantTypes: []string{client.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	_, err = authserver.New(t.Context(), authserver.Config{Issuer: issuer, Store: st, Users: testUsers(t)})
	if err == nil || !strings.Contains(err.Error(), "user mark has the same name as registered client mark") {
		t.Fatalf("registered clash: %v", err)
	}
}

func (e *env) refresh(rt string) *http.Response {
	return e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt), []string{"webapp", "appsecret"})
}

// refresh_retry_grace off: any second use of a refresh token is reuse.
func TestRefreshRetryGraceOff(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.RefreshRetryGrace = -1 })
	rt := decode(t, e.exchange(e.codeFor(t, e.person(), e.stdAuth())))["refresh_token"].(string)
	if resp := e.refresh(rt); resp.StatusCode != 200 {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
}

// A grant ends grant_max_age after the person signed in, however often it
// is refreshed.
func TestGrantMaxAge(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.GrantMaxAge = 2 * time.Second })
	rt := decode(t, e.exchange(e.codeFor(t, e.person(), e.stdAuth())))["refresh_token"].(string)
	resp := e.refresh(rt)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh within the age: %d", resp.StatusCode)
	}
	rt = decode(t, resp)["refresh_token"].(string)
	time.Sleep(2100 * time.Millisecond)
	wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
}

// postFromIP posts a form to path from client address ip, authenticating
// with Basic [id, secret].
func (e *env) postFromIP(path string, f url.Values, ip, id, secret string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-Client-IP", ip)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return e.do(req)
}

// Wrong secrets from one address lock out that address only: the client
// itself, calling from its own, is never refused.
func TestClientLockoutIsPerAddress(t *testing.T) {
	e := newEnv(t)
	cc := form("grant_type", "client_credentials")
	for range 25 {
		e.postFromIP("/oauth/token", cc, "203.0.113.66", "svc", "guess").Body.Close()
	}
	wantOAuthError(t, e.postFromIP("/oauth/token", cc, "203.0.113.66", "svc", "s3cret"), 401, "invalid_client")
	resp := e.postFromIP("/oauth/token", cc, "192.0.2.10", "svc", "s3cret")
	if resp.StatusCode != 200 {
		t.Fatalf("the client's own address was locked out by an attacker's: %d %v", resp.StatusCode, decode(t, resp))
	}
	tok := decode(t, resp)["access_token"].(string)
	for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
		if resp := e.postFromIP(path, form("token", tok), "192.0.2.10", "svc", "s3cret"); resp.StatusCode != 200 {
			t.Errorf("%s from the client's address: %d", path, resp.StatusCode)
		}
	}
	// A /64 is one address: an attacker cannot step through its 2^64.
	for i := range 25 {
		e.postFromIP("/oauth/token", cc, fmt.Sprintf("2001:db8:1:2::%x", i+1), "svc", "guess").Body.Close()
	}
	wantOAuthError(t, e.postFromIP("/oauth/token", cc, "2001:db8:1:2::ffff", "svc", "s3cret"), 401, "invalid_client")
	if resp := e.postFromIP("/oauth/token", cc, "2001:db8:1:3::1", "svc", "s3cret"); resp.StatusCode != 200 {
		t.Fatalf("another /64: %d", resp.StatusCode)
	}
}

// Generated secrets cannot be guessed, so they are never locked.
func TestGeneratedSecretsNeverLock(t *testing.T) {
	e := newEnv(t)
	ci, err := e.srv.Admin().RegisterClient(t.Context(), &client.Info{Name: "Gen", GrantTypes: []string{"client_credentials"}, Scope: "read"})
	if err != nil {
		t.Fatal(err)
	}
	cc := form("grant_type", "client_credentials")
	for range 25 {
		e.postFromIP("/oauth/token", cc, "203.0.113.66", ci.ID, "guess").Body.Close()
	}
	if resp := e.postFromIP("/oauth/token", cc, "203.0.113.66", ci.ID, ci.Secret); resp.StatusCode != 200 {
		t.Fatalf("a generated secret after failures: %d", resp.StatusCode)
	}
}

// A cold secret_hash client under 32 concurrent token requests pays one
// bcrypt (at cost 12, a few hundred milliseconds of CPU), not 32.
func TestColdSecretHashPaysOneBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), 12)
	if err != nil {
		t.Fatal(err)
	}
	secrets := client.NewSecrets()
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Clients = []*client.Client{{ID: "svc", Name: "Service", SecretHash: string(h), GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{"read"}}}
		c.Secrets = secrets
	})
	var wg sync.WaitGroup
	codes := make([]int, 32)
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("svc", "s3cret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if n := secrets.BcryptRuns(); n != 1 {
		t.Fatalf("32 cold requests ran %d bcrypts, want 1", n)
	}
}

// keyRecorder is a store that remembers the counter keys it was given.
type keyRecorder struct {
	store.Store
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
	return k.Store.Incr(ctx, key, window)
}

// signIn tries username/password from address ip in a fresh browser and
// returns the status of the login answer.
func (e *env) signIn(t *testing.T, username, password, ip string) int {
	t.Helper()
	p := persontest.New(username, password)
	res, err := p.Get(e.stdAuth())
	if err != nil {
		t.Fatal(err)
	}
	f, err := res.Page.Form()
	if err != nil {
		t.Fatal(err)
	}
	f.Fields.Set("username", username)
	f.Fields.Set("password", password)
	return postFrom(t, p, f.Action, f.Fields, ip)
}

// Wrong passwords from many addresses slow guessing down but never refuse
// the person's right password from an address that has not failed.
func TestLoginLockoutNobodyCanTrigger(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		if st := e.signIn(t, "mark", "guess", fmt.Sprintf("203.0.113.%d", i+1)); st != 401 {
			t.Fatalf("guess %d: %d", i, st)
		}
	}
	if st := e.signIn(t, "mark", markPassword, "192.0.2.50"); st != http.StatusSeeOther {
		t.Fatalf("five failures elsewhere locked mark out: %d", st)
	}
	// Many failures for mark: each failing address now gets one try, a
	// fresh one still signs in.
	for i := 5; i < 12; i++ {
		e.signIn(t, "mark", "guess", fmt.Sprintf("203.0.113.%d", i+1))
	}
	if st := e.signIn(t, "mark", "guess", "203.0.113.1"); st != http.StatusTooManyRequests {
		t.Fatalf("an address that failed, while mark is under attack: %d, want 429", st)
	}
	if st := e.signIn(t, "mark", markPassword, "192.0.2.51"); st != http.StatusSeeOther {
		t.Fatalf("mark from a clean address while under attack: %d", st)
	}
	// One address failing for many usernames is stopped there.
	for i := range 20 {
		e.signIn(t, fmt.Sprintf("user%d", i), "guess", "198.51.100.9")
	}
	if st := e.signIn(t, "mark", markPassword, "198.51.100.9"); st != http.StatusTooManyRequests {
		t.Fatalf("an address with 20 failures: %d, want 429", st)
	}
}

// What a person typed reaches store keys only as a short keyed hash.
func TestTypedTextNotInStoreKeys(t *testing.T) {
	rec := &keyRecorder{Store: openStore(t)}
	e := newEnvWith(t, rec, "ES256")
	typed := markPassword + strings.Repeat("x", 60_000)
	e.signIn(t, typed, "whatever", "192.0.2.1")
	e.signIn(t, "mark", "wrong", "192.0.2.1")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.keys) < 6 {
		t.Fatalf("counter keys %q", rec.keys)
	}
	for _, k := range rec.keys {
		if strings.Contains(k, markPassword) || strings.Contains(k, "mark") || len(k) > 80 {
			t.Errorf("store key %.100q holds typed text", k)
		}
	}
}

// lossyStore pretends to have lost its key ring (empty) and, with
// readOnly, not to take writes of it.
type lossyStore struct {
	store.Store
	mu              sync.Mutex
	empty, readOnly bool
}

func (l *lossyStore) Keys(ctx context.Context) (*store.KeyRing, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.empty {
		return &store.KeyRing{}, nil
	}
	return l.Store.Keys(ctx)
}

func (l *lossyStore) SwapKeys(ctx context.Context, prev int64, ring *store.KeyRing) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.empty {
		return l.Store.SwapKeys(ctx, prev, ring)
	}
	if l.readOnly {
		return errors.New("READONLY")
	}
	if prev != 0 {
		return store.ErrConflict
	}
	real, err := l.Store.Keys(ctx)
	if err != nil {
		return err
	}
	l.empty = false
	return l.Store.SwapKeys(ctx, real.Version, ring)
}

func (l *lossyStore) set(empty, readOnly bool) {
	l.mu.Lock()
	l.empty, l.readOnly = empty, readOnly
	l.mu.Unlock()
}

// A lost key ring is never installed: the instance keeps signing with its
// own, health says what is wrong until the ring is written back, and the
// loss is counted.
func TestLostKeyRingIsRestored(t *testing.T) {
	st := &lossyStore{Store: openStore(t)}
	m := new(countingMetrics)
	e := newEnvWith(t, st, "ES256", func(c *authserver.Config) { c.Metrics = m })
	e.keys.OnLoss = func() { m.StoreDataLoss("key ring") }
	kids := e.keys.KeyIDs()
	secret := string(e.keys.CookieSecret())

	st.set(true, true)
	if err := e.keys.Refresh(t.Context()); err == nil {
		t.Fatal("a failed write-back was not reported")
	}
	if got := string(e.keys.CookieSecret()); got != secret || len(got) < 32 {
		t.Fatal("the empty ring's cookie secret was installed")
	}
	if h := e.srv.Health(t.Context()); h.Status != "unavailable" || !strings.Contains(h.Reason, "lost its data") {
		t.Fatalf("health while the ring is lost: %+v", h)
	}
	if resp := e.post("/oauth/token", form("grant_type", "client_credentials"), []string{"svc", "s3cret"}); resp.StatusCode != 200 {
		t.Fatalf("token endpoint while the store's ring is lost: %d", resp.StatusCode)
	}

	st.set(true, false)
	if err := e.keys.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	ring, err := st.Keys(t.Context())
	var written []string
	for _, k := range ring.Keys {
		written = append(written, k.ID)
	}
	if err != nil || len(written) != len(kids) || !slices.Contains(written, kids[0]) || !slices.Contains(written, kids[1]) || string(ring.CookieSecret) != secret {
		t.Fatalf("the ring written back: %+v, %v", ring, err)
	}
	if e.keys.Lost() {
		t.Fatal("still lost after the write-back")
	}
	if n := m.counts["lost key ring"]; n != 1 {
		t.Fatalf("losses counted: %d, want 1", n)
	}
}

// During a rolling reload an instance with the old configuration may still
// hand a removed person a fresh refresh token; an instance with the new one
// refuses it and revokes the grant.
func TestOffboardedGrantRefusedEverywhere(t *testing.T) {
	st := openStore(t)
	withAlice := func(c *authserver.Config) {
		c.Users = append(c.Users, &web.User{Username: "alice", PasswordHash: bcryptHash(t, "alice-pw")})
	}
	old := newEnvWith(t, st, "ES256", withAlice)
	if err := old.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	rt := decode(t, old.exchange(old.codeFor(t, persontest.New("alice", "alice-pw"), old.stdAuth())))["refresh_token"].(string)

	cur := newEnvWith(t, st, "ES256")
	if err := cur.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp := old.refresh(rt) // the old instance has not heard yet
	if resp.StatusCode != 200 {
		t.Fatalf("refresh on the old instance: %d", resp.StatusCode)
	}
	rt2 := decode(t, resp)["refresh_token"].(string)
	m := wantOAuthError(t, cur.refresh(rt2), 400, "invalid_grant")
	if !strings.Contains(m["error_description"].(string), "no longer exists") {
		t.Fatalf("description %v", m["error_description"])
	}
}

// After the decision the device page says what was granted, not what is
// asked; a denial lists nothing.
func TestDeviceDonePages(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.ScopeDescriptions = map[string]string{"read": "See your droplets"}
	})
	for decision, want := range map[string]string{"approve": "now has access to:", "deny": "will not get access"} {
		m := e.startDevice(t, nil)
		p := e.person()
		p.Decision = decision
		last, err := p.Device(e.http.URL + "/device?user_code=" + url.QueryEscape(m["user_code"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(last.Body, want) || strings.Contains(last.Body, "is asking for access") {
			t.Errorf("%s: the last page does not say %q:\n%s", decision, want, last.Body)
		}
		if decision == "approve" && !strings.Contains(last.Body, "See your droplets") {
			t.Errorf("the granted scope is not described:\n%s", last.Body)
		}
		if decision == "deny" && strings.Contains(last.Body, "See your droplets") {
			t.Errorf("a denial lists scopes:\n%s", last.Body)
		}
	}
}

// The page for a link that cannot work speaks to the person, and gives the
// developer's detail on a line of its own.
func TestErrorPageForPeople(t *testing.T) {
	e := newEnv(t)
	res, err := e.person().Get(e.authURL("response_type", "code", "client_id", "nobody", "state", "x"))
	if err != nil {
		t.Fatal(err)
	}
	body := res.Page.Body
	for _, want := range []string{"This link does not work", "tell the application", "For the application's developer:", "(invalid_request)"} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Return to the application and try again") {
		t.Errorf("the page gives advice that cannot help:\n%s", body)
	}
}
