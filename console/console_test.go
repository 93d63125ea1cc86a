package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/console"
)

// adminBrowser is a browser at the console, mounted below /console/.
type adminBrowser struct {
	t    *testing.T
	http *http.Client
	base string
}

func newConsole(t *testing.T, hist *console.History) (*adminBrowser, *authserver.Server) {
	b, srv, _ := newConsoleStore(t, hist)
	return b, srv
}

func newConsoleStore(t *testing.T, hist *console.History) (*adminBrowser, *authserver.Server, store.Store) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ring := authserver.NewAuditRing(100)
	srv, err := authserver.New(t.Context(), authserver.Config{Issuer: "https://auth.example.com", Store: st, AuditRing: ring,
		Clients: []*client.Client{{ID: "configured", Name: "From the Caddyfile", Public: true, GrantTypes: []string{client.GrantDeviceCode}}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Config{Admin: srv.Admin(), Audit: ring, History: hist, User: func(*http.Request) string { return "ops" }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", c)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	return &adminBrowser{t: t, http: &http.Client{Jar: jar}, base: ts.URL + "/console/"}, srv, st
}

func (b *adminBrowser) get(page string) (int, string) {
	b.t.Helper()
	resp, err := b.http.Get(b.base + page)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func (b *adminBrowser) post(page string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.http.PostForm(b.base+page, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func read(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script") || resp.Header.Get("X-Frame-Options") != "DENY" ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("page headers %v", resp.Header)
		}
		if strings.Contains(string(body), "<script") {
			t.Error("a console page has a script")
		}
	}
	return resp.StatusCode, string(body)
}

var tokenRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// token is the CSRF token of the page's forms.
func token(t *testing.T, body string) string {
	t.Helper()
	m := tokenRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

func TestConsoleClients(t *testing.T) {
	b, srv := newConsole(t, nil)
	status, body := b.get("clients")
	if status != 200 || !strings.Contains(body, "From the Caddyfile") || !strings.Contains(body, "read-only") {
		t.Fatalf("clients page %d:\n%s", status, body)
	}
	csrf := token(t, body)
	register := url.Values{"csrf_token": {csrf}, "action": {"create"}, "name": {"Billing"}, "website": {"https://billing.example"},
		"redirect_uris": {"https://billing.example/cb\r\nhttps://billing.example/other\r\n"}, "scope": {"read"},
		"grant": {"authorization_code", "refresh_token"}}

	// Without the token (or with another's) nothing happens.
	forged := url.Values{}
	for k, v := range register {
		forged[k] = v
	}
	forged.Set("csrf_token", "x"+csrf)
	if status, _ := b.post("clients", forged); status != http.StatusForbidden {
		t.Fatalf("a forged form answered %d", status)
	}
	if list, _ := srv.Admin().Clients(t.Context()); len(list) != 1 {
		t.Fatalf("a forged form registered a client: %v", list)
	}
	// With the token, but posted by another site's page: the same origin
	// check as the sign-in pages'.
	for _, h := range []http.Header{{"Origin": {"http://evil.example"}}, {"Sec-Fetch-Site": {"cross-site"}}} {
		req, _ := http.NewRequest("POST", b.base+"clients", strings.NewReader(register.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := b.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := read(t, resp); status != http.StatusForbidden {
			t.Fatalf("a cross-site post (%v) answered %d", h, status)
		}
	}
	if list, _ := srv.Admin().Clients(t.Context()); len(list) != 1 {
		t.Fatalf("a cross-site form registered a client: %v", list)
	}

	status, body = b.post("clients", register)
	secret := regexp.MustCompile(`class="client-secret">([^<]+)<`).FindStringSubmatch(body)
	if status != 200 || secret == nil || !strings.Contains(body, "shown <strong>this once</strong>") {
		t.Fatalf("registering: %d\n%s", status, body)
	}
	list, _ := srv.Admin().Clients(t.Context())
	if len(list) != 2 || list[1].Name != "Billing" || len(list[1].RedirectURIs) != 2 || list[1].Public {
		t.Fatalf("registered %+v", list)
	}
	id := list[1].ID
	// The secret is shown once: the list does not show it again.
	if _, again := b.get("clients"); strings.Contains(again, secret[1]) {
		t.Fatal("the clients page shows the secret again")
	}
	status, body = b.post("clients", url.Values{"csrf_token": {csrf}, "action": {"rotate"}, "client_id": {id}})
	if rotated := regexp.MustCompile(`class="client-secret">([^<]+)<`).FindStringSubmatch(body); status != 200 || rotated == nil || rotated[1] == secret[1] {
		t.Fatalf("rotating: %d\n%s", status, body)
	}
	// A bad registration says why, naming the field.
	if status, body := b.post("clients", url.Values{"csrf_token": {csrf}, "action": {"create"}, "name": {""}}); status != 400 || !strings.Contains(body, "name is required") {
		t.Fatalf("an empty name: %d\n%s", status, body)
	}
	// Deleting asks first.
	status, body = b.post("clients", url.Values{"csrf_token": {csrf}, "action": {"delete"}, "client_id": {id}})
	if status != 200 || !strings.Contains(body, "Delete Billing") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("delete without confirming: %d\n%s", status, body)
	}
	if list, _ := srv.Admin().Clients(t.Context()); len(list) != 2 {
		t.Fatal("deleted without confirmation")
	}
	status, body = b.post("clients", url.Values{"csrf_token": {csrf}, "action": {"delete"}, "client_id": {id}, "confirm": {"yes"}})
	if list, _ := srv.Admin().Clients(t.Context()); status != 200 || len(list) != 1 || !strings.Contains(body, "Deleted client") {
		t.Fatalf("deleting: %d, %d clients left\n%s", status, len(list), body)
	}
	if status, _ := b.post("clients", url.Values{"csrf_token": {csrf}, "action": {"delete"}, "client_id": {"configured"}, "confirm": {"yes"}}); status != http.StatusConflict {
		t.Fatalf("deleting a configured client: %d", status)
	}
	// The overview's recent events show what was done.
	_, overview := b.get("")
	for _, want := range []string{"client registered", "client secret rotated", "client deleted", "Tokens issued", "nothing this hour"} {
		if !strings.Contains(overview, want) {
			t.Errorf("the overview does not show %q", want)
		}
	}
	if status, _ := b.get("nope"); status != 404 {
		t.Fatalf("an unknown page: %d", status)
	}
}

func TestConsoleCharts(t *testing.T) {
	hist := new(console.History)
	for range 30 {
		hist.TokensIssued.Add()
	}
	for range 9 {
		hist.BearerOK.Add()
	}
	hist.BearerRefused.Add()
	b, _ := newConsole(t, hist)
	_, body := b.get("")
	for _, want := range []string{"Tokens issued: <strong>30</strong>", "bearer_auth outcomes: <strong>10</strong>", "Token endpoint errors: <strong>0</strong>",
		`<rect x="590" y="0" width="8" height="100" fill="#2563eb">`, "9 let through", "1 refused"} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %q:\n%s", want, body)
		}
	}
}

func TestConsoleGrants(t *testing.T) {
	b, srv, st := newConsoleStore(t, nil)
	now := time.Now().UTC()
	g := &store.Grant{ID: "g1", ClientID: "configured", Subject: "mark", Scope: "read", Login: "password", CreatedAt: now,
		LastUsedAt: now, ExpiresAt: now.Add(time.Hour), EndsBy: now.Add(24 * time.Hour)}
	if err := st.PutGrant(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	status, body := b.get("grants")
	if status != 200 || strings.Contains(body, "No live grants") {
		t.Fatalf("the grants page before a search: %d\n%s", status, body)
	}
	for _, q := range []string{"grants?subject=mark", "grants?client_id=configured"} {
		if _, body = b.get(q); !strings.Contains(body, "From the Caddyfile") || !strings.Contains(body, `name="grant_id" value="g1"`) {
			t.Fatalf("%s:\n%s", q, body)
		}
	}
	if _, body := b.get("grants?subject=mark&client_id=configured"); !strings.Contains(body, "not both") {
		t.Fatalf("both: %s", body)
	}
	csrf := token(t, body)
	status, body = b.post("grants", url.Values{"csrf_token": {csrf}, "action": {"revoke"}, "grant_id": {"g1"}, "client_id": {"configured"}})
	if status != 200 || !strings.Contains(body, "Revoked grant g1") || !strings.Contains(body, "No live grants") {
		t.Fatalf("revoking: %d\n%s", status, body)
	}
	if !srv.Revocations().IsRefreshRevoked("g1", "configured", "mark", now) {
		t.Fatal("the grant is not revoked")
	}
	if status, body = b.post("grants", url.Values{"csrf_token": {csrf}, "action": {"revoke"}, "grant_id": {"g1"}}); status != 404 {
		t.Fatalf("revoking it again: %d\n%s", status, body)
	}
	if _, body = b.get("audit"); !strings.Contains(body, "grant revoked") || !strings.Contains(body, "console ops") {
		t.Fatalf("the audit page does not show who revoked the grant:\n%s", body)
	}
}

// Delegated grants show who acts for the user: the agent an identity
// assertion let in, and the services that exchanged the grant's tokens.
func TestConsoleDelegatedGrants(t *testing.T) {
	b, _, st := newConsoleStore(t, nil)
	now := time.Now().UTC()
	for _, g := range []*store.Grant{
		{ID: "g-agent", ClientID: "configured", Subject: "corp:alice", Scope: "read", Login: "corp", Via: store.ViaIDJAG},
		{ID: "g-web", ClientID: "configured", Subject: "mark", Scope: "read", Login: "password"},
	} {
		g.CreatedAt, g.LastUsedAt, g.ExpiresAt, g.EndsBy = now, now, now.Add(time.Hour), now.Add(time.Hour)
		if err := st.PutGrant(t.Context(), g); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddGrantActor(t.Context(), "g-web", "orders"); err != nil {
		t.Fatal(err)
	}
	_, body := b.get("grants?subject=corp:alice")
	if !strings.Contains(body, "identity assertion: no consent page") || !strings.Contains(body, "(delegated by corp)") {
		t.Fatalf("an ID-JAG grant:\n%s", body)
	}
	_, body = b.get("grants?subject=mark")
	if !strings.Contains(body, "<div>orders <small>(token exchange)</small></div>") || strings.Contains(body, "delegated by") {
		t.Fatalf("an exchanged grant:\n%s", body)
	}
}

// The grants search is one row: its button lines up with its inputs
// (buttons elsewhere sit a line below the field above them).
func TestSearchButtonInRow(t *testing.T) {
	css, err := os.ReadFile("pages/console.css")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(css), "form.search button { margin-top: 0; }") {
		t.Fatal("the grants search's button keeps the margin that puts it below its inputs")
	}
}
