package test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tokengate/tokengate/internal/persontest"
)

// sessionCaddyfile is a web app ({{.API}}, the recording upstream) behind
// session_auth, signing people in at the same process's issuer, with
// access tokens short enough to watch them refreshed.
const sessionCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		access_token_ttl 4s
		client app-bff {
			name "Team Dashboard"
			secret bff-secret
			grant authorization_code refresh_token
			redirect_uri http://127.0.0.1:{{.API}}/.tokengate/callback
			scope openid profile email read
			post_logout_redirect_uri http://127.0.0.1:{{.API}}/
			backchannel_logout_uri http://127.0.0.1:{{.API}}/.tokengate/backchannel-logout
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe {
			name "Mark E. Mark"
			email mark@example.com
		}
	}
}

http://127.0.0.1:{{.Auth}} {
	oauth2_server
}

http://127.0.0.1:{{.API}} {
	session_auth {
		client app-bff
		scope openid profile email read
		forward_token
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
		header_up X-Email {http.auth.user.claims.email}
	}
}
`

// sessionSignIn has p open the app, sign in at tokengate and come back to
// path; it returns the page the upstream answered.
func sessionSignIn(t *testing.T, g *gateway, p *persontest.Person, path string) *persontest.Page {
	t.Helper()
	res, err := p.Get(g.APIURL() + path)
	if err != nil || res.Redirect == nil || !strings.HasPrefix(res.Redirect.String(), g.AuthURL()+"/oauth/authorize?") {
		t.Fatalf("a navigation without a session: %+v %v", res, err)
	}
	back, err := p.Authorize(res.Redirect.String())
	if err != nil {
		t.Fatal(err)
	}
	if res, err = p.Get(back.String()); err != nil || res.Page == nil || res.Page.Status != 200 {
		t.Fatalf("after the callback: %+v %v\n%s", res, err, g.log)
	}
	return res.Page
}

// A person signs in to a web app through session_auth; the upstream sees
// who they are and a bearer token, never the session's cookie; scripts
// get 401 with a login_url; cross-site unsafe requests are refused; the
// token is refreshed ahead of its expiry once for many concurrent
// requests; the app's logout, and a sign-out at tokengate (back-channel),
// end the session.
func TestSessionAuth(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(sessionCaddyfile)
		p := persontest.New("mark", markPassword)
		page := sessionSignIn(t, g, p, "/dashboard?tab=2")
		if !strings.Contains(page.Body, `"path":"/dashboard"`) || !strings.Contains(page.Body, `"user":"mark"`) {
			t.Fatalf("the app's page: %s", page.Body)
		}
		seen := up.seen()
		last := seen[len(seen)-1]
		if last.URL.RawQuery != "tab=2" || last.Header.Get("X-Email") != "mark@example.com" {
			t.Fatalf("the upstream saw %s with X-Email %q", last.URL, last.Header.Get("X-Email"))
		}
		if strings.Contains(last.Header.Get("Cookie"), "tg_session") {
			t.Fatalf("the upstream saw the session's cookie: %q", last.Header.Get("Cookie"))
		}
		bearer, _ := strings.CutPrefix(last.Header.Get("Authorization"), "Bearer ")
		if c, err := decodeClaims(bearer); err != nil || c["sub"] != "mark" || c["client_id"] != "app-bff" {
			t.Fatalf("the upstream's bearer token: %v %v", c, err)
		}

		// A script without a session: 401 and where to send the page.
		resp, body := get(t, http.DefaultClient, "GET", g.APIURL()+"/api/items", "Accept", "application/json")
		var m map[string]string
		_ = json.Unmarshal([]byte(body), &m)
		if resp.StatusCode != 401 || m["error"] != "login_required" || !strings.HasPrefix(m["login_url"], g.APIURL()+"/.tokengate/login?") {
			t.Fatalf("a script without a session: %d %s", resp.StatusCode, body)
		}
		// A logout token that is not the provider's is refused.
		if resp, err := http.PostForm(g.APIURL()+"/.tokengate/backchannel-logout", url.Values{"logout_token": {bearer}}); err != nil || resp.StatusCode != 400 {
			t.Fatalf("an access token as a logout token: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if code := sessionStatus(t, g, p); code != 200 {
			t.Fatalf("a refused logout token ended the session: %d", code)
		}
		// With the session: its person, for scripts.
		res, err := p.Get(g.APIURL() + "/.tokengate/session")
		if err != nil || res.Page == nil || !strings.Contains(res.Page.Body, `"sub":"mark"`) {
			t.Fatalf("/.tokengate/session: %+v %v", res, err)
		}
		// An unsafe request from another site is refused; from the site
		// itself it passes.
		for origin, want := range map[string]int{"http://evil.example": 403, g.APIURL(): 200} {
			req, _ := http.NewRequest("POST", g.APIURL()+"/api/items", strings.NewReader("{}"))
			req.Header.Set("Origin", origin)
			resp, err := p.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("a POST from %s: %d, want %d", origin, resp.StatusCode, want)
			}
		}

		// The access token (4 s) is refreshed once, however many requests
		// find it due at once.
		time.Sleep(3300 * time.Millisecond)
		before := max(0, metric(scrape(t, g), `tokengate_tokens_issued_total{client_id="app-bff",grant_type="refresh_token"}`)) // -1: none yet
		var wg sync.WaitGroup
		tokens := make([]string, 20)
		for range tokens {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", g.APIURL()+"/api/items", nil)
				resp, err := p.HTTP.Do(req)
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("a request during the refresh: %v %v", resp, err)
					return
				}
				resp.Body.Close()
			})
		}
		wg.Wait()
		for i := range tokens {
			tokens[i] = up.seen()[len(up.seen())-1-i].Header.Get("Authorization")
		}
		after := metric(scrape(t, g), `tokengate_tokens_issued_total{client_id="app-bff",grant_type="refresh_token"}`)
		if after-before != 1 {
			t.Fatalf("%v refreshes for 20 concurrent requests, want 1\n%s", after-before, grepLines(g.log.String(), "refresh"))
		}
		if tokens[0] == "Bearer "+bearer {
			t.Fatal("the upstream still gets the old token")
		}

		// The app's logout: the session ends, and tokengate signs the
		// person out too, back to the app.
		res, err = p.Post(g.APIURL()+"/.tokengate/logout", url.Values{})
		if err != nil || res.Redirect == nil || !strings.HasPrefix(res.Redirect.String(), g.AuthURL()+"/oauth/logout?") {
			t.Fatalf("logout: %+v %v", res, err)
		}
		if res, err = p.SignOut(res.Redirect.String()); err != nil || res.Redirect == nil || res.Redirect.String() != g.APIURL()+"/" {
			t.Fatalf("signing out at tokengate: %+v %v", res, err)
		}
		if res, _ := p.Get(g.APIURL() + "/dashboard"); res.Redirect == nil {
			t.Fatalf("after logout the app still serves the person: %+v", res)
		}
		// Its grant is revoked with it: the last access token the
		// upstream got no longer works.
		seen = up.seen()
		lastToken := strings.TrimPrefix(seen[len(seen)-1].Header.Get("Authorization"), "Bearer ")
		if !waitFor(5*time.Second, func() bool {
			resp, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/oauth/userinfo", "Authorization", "Bearer "+lastToken)
			return resp.StatusCode == 401
		}) {
			t.Fatal("the signed-out session's access token still works")
		}

		// Signed in again, then signed out on tokengate's account page:
		// the back-channel logout ends the app's session.
		sessionSignIn(t, g, p, "/")
		res, err = p.Get(g.AuthURL() + "/account")
		if err != nil || res.Page == nil {
			t.Fatal(err)
		}
		form, err := res.Page.FormTo("/logout")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Post(form.Action, form.Fields); err != nil {
			t.Fatal(err)
		}
		if !waitFor(10*time.Second, func() bool {
			req, _ := http.NewRequest("GET", g.APIURL()+"/.tokengate/session", nil)
			resp, err := p.HTTP.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 401
		}) {
			t.Fatalf("the back-channel logout did not end the app's session:\n%s", g.log)
		}
	})
}

// A person signs in to a web app behind session_auth in a real browser
// (headless Chromium): the app's page, a script's fetch with the session,
// and the app's sign-out; screenshots of each step go to
// $TOKENGATE_SCREENSHOTS (default: a new temporary directory), logged.
func TestSessionAuthInChromium(t *testing.T) {
	ctx := browserContext(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Team Dashboard</title><main><h1>Team Dashboard</h1>
<p id="who">Hello, %s &lt;%s&gt;</p><p id="token">%s</p><p id="session">…</p>
<form method="post" action="/.tokengate/logout"><button id="logout">Sign out</button></form></main>
<script>fetch("/.tokengate/session").then(r => r.json()).then(s => { document.getElementById("session").textContent = "session of " + s.sub })</script>`,
			html.EscapeString(r.Header.Get("X-User")), html.EscapeString(r.Header.Get("X-Email")),
			map[bool]string{true: "the app got a bearer token", false: "no token"}[strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey")])
	}))
	t.Cleanup(app.Close)
	g := newGateway(t, Ports{Upstream: strings.TrimPrefix(app.URL, "http://")})
	g.start(sessionCaddyfile)
	shots := screenshotDir(t)
	shoot := func(name string) {
		t.Helper()
		screenshot(t, ctx, shots, name)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) { browserStep(t, ctx, g, what, actions...) }
	step("opening the app", chromedp.Navigate(g.APIURL()+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	shoot("session-1-sign-in.png")
	step("signing in", chromedp.SendKeys(chromedp.CSS("#username"), "mark"), chromedp.SendKeys(chromedp.CSS("#password"), markPassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("button[value=approve]")))
	shoot("session-2-consent.png")
	step("allowing", chromedp.Click(chromedp.CSS("button[value=approve]")), chromedp.WaitVisible(chromedp.CSS("#who")))
	waitText := func(sel, want string) string {
		t.Helper()
		var got string
		for range 50 {
			got, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
			if strings.Contains(got, want) {
				return got
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s says %q, want %q", sel, got, want)
		return ""
	}
	waitText("#who", "Hello, mark <mark@example.com>")
	waitText("#token", "the app got a bearer token")
	waitText("#session", "session of mark")
	shoot("session-3-the-app.png")
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	if err != nil || strings.Contains(cookies, "tg_session") {
		t.Fatalf("a script reads the session's cookie: %q %v", cookies, err)
	}
	step("signing out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#username")))
	shoot("session-4-signed-out.png")
}

// sessionStatus is what the app's /.tokengate/session answers p.
func sessionStatus(t *testing.T, g *gateway, p *persontest.Person) int {
	t.Helper()
	req, _ := http.NewRequest("GET", g.APIURL()+"/.tokengate/session", nil)
	resp, err := p.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A session made on one instance works on the other (the store holds
// it); an administrator revoking the person, or the person removing the
// app's access on /account, ends it on both within the revocation
// promise.
func TestSessionAuthAcrossInstances(t *testing.T) {
	// Without the back-channel logout, which would end it too: the
	// revocations alone.
	a, b, _, _ := twoInstancesOf(t, strings.Replace(sessionCaddyfile, "\t\t\tbackchannel_logout_uri http://127.0.0.1:{{.API}}/.tokengate/backchannel-logout\n", "", 1))
	p := persontest.New("mark", markPassword)
	sessionSignIn(t, a, p, "/")
	if code := sessionStatus(t, b, p); code != 200 {
		t.Fatalf("B does not know A's session: %d", code)
	}
	ended := func(what string) {
		t.Helper()
		for _, g := range []*gateway{a, b} {
			if !waitFor(5*time.Second, func() bool { return sessionStatus(t, g, p) == 401 }) {
				t.Fatalf("%s: the session lives on at %s", what, g.APIURL())
			}
		}
	}
	resp, err := http.Post("http://127.0.0.1:"+itoa(b.Ports.Admin)+"/oauth2/revoke", "application/json", strings.NewReader(`{"subject":"mark"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoking mark: %v %v", resp, err)
	}
	resp.Body.Close()
	ended("the person revoked")

	time.Sleep(1100 * time.Millisecond) // tokens issued in the revocation's second are revoked (iat is in seconds)
	p = persontest.New("mark", markPassword)
	sessionSignIn(t, a, p, "/")
	if code := sessionStatus(t, b, p); code != 200 {
		t.Fatalf("a new session after the revocation: %d", code)
	}
	res, err := p.Get(a.AuthURL() + "/account")
	if err != nil || res.Page == nil {
		t.Fatal(err)
	}
	form, err := res.Page.FormWith("client_id", "app-bff")
	if err != nil {
		t.Fatal(err)
	}
	form.Fields.Set("action", "remove")
	if res, err := p.Post(form.Action, form.Fields); err != nil || res.Page == nil || !strings.Contains(res.Page.Body, "no longer has access") {
		t.Fatalf("removing the app's access: %+v %v", res, err)
	}
	ended("the app's access removed")

	// Signed out at A, while B holds the session in its cache.
	p = persontest.New("mark", markPassword)
	sessionSignIn(t, a, p, "/")
	if code := sessionStatus(t, b, p); code != 200 {
		t.Fatalf("B does not know the new session: %d", code)
	}
	req, _ := http.NewRequest("POST", a.APIURL()+"/.tokengate/logout", nil)
	req.Header.Set("Origin", a.APIURL())
	kept := p.HTTP.Jar.Cookies(req.URL) // the cookie, kept past the logout
	if resp, err := p.HTTP.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %v %v", resp, err)
	}
	p.HTTP.Jar.SetCookies(req.URL, kept)
	ended("the app's logout")
}

// A person's sessions are bounded (the oldest ends), and the way back
// after sign-in stays on the site.
func TestSessionAuthBoundsAndReturn(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(strings.Replace(sessionCaddyfile, "\t\tforward_token\n", "\t\tforward_token\n\t\tmax_sessions_per_subject 2\n", 1))
	var browsers []*persontest.Person
	for range 3 {
		p := persontest.New("mark", markPassword)
		sessionSignIn(t, g, p, "/")
		browsers = append(browsers, p)
	}
	for i, want := range []int{401, 200, 200} {
		if code := sessionStatus(t, g, browsers[i]); code != want {
			t.Errorf("browser %d's session: %d, want %d", i, code, want)
		}
	}
	// A return_to elsewhere lands on the site's root.
	p := persontest.New("mark", markPassword)
	res, err := p.Get(g.APIURL() + "/.tokengate/login?return_to=" + url.QueryEscape("//evil.example/x"))
	if err != nil || res.Redirect == nil {
		t.Fatalf("login: %+v %v", res, err)
	}
	back, err := p.Authorize(res.Redirect.String())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", back.String(), nil)
	resp, err := p.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Fatalf("after sign-in the person goes to %q, want the site's /", loc)
	}
}

// sessionProviderCaddyfile is session_auth signing people in at a login
// provider (PROVIDER: panva's oidc-provider).
const sessionProviderCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		login_provider op {
			name "Test SSO"
			issuer PROVIDER
			client_id tokengate
			client_secret {env.RP_SECRET}
		}
	}
}

http://127.0.0.1:{{.Auth}} {
	oauth2_server
}

http://127.0.0.1:{{.API}} {
	session_auth {
		provider op
	}
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
	}
}
`

// session_auth with another OpenID provider (panva's oidc-provider, a
// login_provider): the person signs in there, the upstream sees
// op:<their sub>; the provider's own sign-out tells the site through its
// back-channel logout; a provider that is down is a page saying so.
func TestSessionAuthWithLoginProvider(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	op := startProvider(t, 0, "key-1", "RP_REDIRECT="+g.APIURL()+"/.tokengate/callback", "RP_BACKCHANNEL="+g.APIURL()+"/.tokengate/backchannel-logout",
		"RP_POST_LOGOUT="+g.APIURL()+"/")
	g.start(strings.ReplaceAll(sessionProviderCaddyfile, "PROVIDER", op.issuer), "RP_SECRET=rp-secret")

	// One browser: at the site (p), and at the provider (atOP, which
	// signs in on the provider's pages and stops at the way back).
	p := persontest.New("", "")
	res, err := p.Get(g.APIURL() + "/reports")
	if err != nil || res.Redirect == nil || !strings.HasPrefix(res.Redirect.String(), op.issuer) {
		t.Fatalf("a navigation goes to the provider: %+v %v", res, err)
	}
	atOP := persontest.New("", "")
	atOP.HTTP.Jar = p.HTTP.Jar
	atOP.Provider, atOP.ProviderLogin, atOP.ProviderHost = "Test SSO", "mark@example.com", strings.TrimPrefix(op.issuer, "http://")
	back, err := atOP.Authorize(res.Redirect.String())
	if err != nil || back == nil || !strings.HasPrefix(back.String(), g.APIURL()+"/.tokengate/callback") {
		t.Fatalf("back from the provider: %v %v (pages %v)", back, err, atOP.Pages)
	}
	if res, err = p.Get(back.String()); err != nil || res.Page == nil || !strings.Contains(res.Page.Body, `"user":"op:mark@example.com"`) {
		t.Fatalf("the app after the callback: %+v %v\n%s", res, err, g.log)
	}

	// The provider's own sign-out (its end_session_endpoint, confirmed
	// there) tells the site, which ends the session.
	res, err = atOP.Get(op.issuer + "/session/end")
	if err != nil || res.Page == nil {
		t.Fatalf("the provider's sign-out page: %+v %v", res, err)
	}
	form, err := res.Page.Form()
	if err != nil {
		t.Fatal(err)
	}
	form.Fields.Set("logout", "yes")
	if _, err := atOP.Post(form.Action, form.Fields); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return sessionStatus(t, g, p) == 401 }) {
		t.Fatalf("the provider's back-channel logout did not end the session:\n%s\nthe provider:\n%s", grepLines(g.log.String(), "session_auth"), op.log)
	}

	// The provider down when the site must reach it (its discovery,
	// after a reload): a page that says so.
	op.stop()
	changed := strings.Replace(sessionProviderCaddyfile, "\t\tprovider op\n", "\t\tprovider op\n\t\tscope openid email\n", 1) // Caddy skips an unchanged config
	g.reload(t, strings.ReplaceAll(changed, "PROVIDER", op.issuer))
	res, err = persontest.New("", "").Get(g.APIURL() + "/reports")
	if err != nil || res.Page == nil || res.Page.Status != http.StatusServiceUnavailable || !strings.Contains(res.Page.Body, "cannot be reached") {
		t.Fatalf("the provider down: %+v %v", res, err)
	}
}

// Requests at two instances finding one session's token due at once make
// one refresh between them: the store's lock, not only each process's.
func TestSessionAuthRefreshOnceAcrossInstances(t *testing.T) {
	a, b, _, _ := twoInstancesOf(t, sessionCaddyfile)
	p := persontest.New("mark", markPassword)
	sessionSignIn(t, a, p, "/")
	time.Sleep(3300 * time.Millisecond) // the 4 s token is due
	refreshes := func() float64 {
		n := 0.0
		for _, g := range []*gateway{a, b} {
			n += max(0, metric(scrape(t, g), `tokengate_tokens_issued_total{client_id="app-bff",grant_type="refresh_token"}`))
		}
		return n
	}
	before := refreshes()
	var wg sync.WaitGroup
	for i := range 20 {
		g := []*gateway{a, b}[i%2]
		wg.Go(func() {
			req, _ := http.NewRequest("GET", g.APIURL()+"/api/items", nil)
			resp, err := p.HTTP.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("a request during the refresh at %s: %v %v", g.APIURL(), resp, err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if n := refreshes() - before; n != 1 {
		t.Fatalf("%v refreshes between the two instances, want 1", n)
	}
	// And the grant lives on: the next refresh works (a second refresh
	// of one token would have been a reuse, revoking the grant).
	time.Sleep(3300 * time.Millisecond)
	if code := sessionStatus(t, b, p); code != 200 {
		t.Fatalf("the session after the refresh: %d", code)
	}
	req, _ := http.NewRequest("GET", a.APIURL()+"/api/items", nil)
	if resp, err := p.HTTP.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the next refresh: %v %v\n%s", resp, err, grepLines(a.log.String(), "session_auth"))
	}

}

// A session_auth the configuration cannot serve fails to load, saying
// what to fix.
func TestSessionAuthConfigErrors(t *testing.T) {
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	for change, want := range map[[2]string]string{
		{"\t\t\tredirect_uri http://127.0.0.1:{{.API}}/.tokengate/callback\n", "\t\t\tredirect_uri http://127.0.0.1:{{.API}}/cb\n"}: "must register the site's callback",
		{"\t\t\tsecret bff-secret\n", "\t\t\tsecret_hash $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe\n"}:           "needs a plain secret",
		{"\t\tclient app-bff\n\t\tscope", "\t\tclient app-bff\n\t\tprovider corp\n\t\tscope"}:                                       `provider "corp" is neither self nor a login_provider`,
		{"\t\tscope openid profile email read\n\t\tforward_token", "\t\tscope profile read\n\t\tforward_token"}:                     "scope must include openid",
		{"\t\tscope openid profile email read\n\t\tforward_token", "\t\tscope openid admin\n\t\tforward_token"}:                     "scope admin is not one client app-bff may obtain",
		{"\t\tforward_token\n", "\t\tforward_tokens\n"}:                                                                             "forward_token",
	} {
		bad := strings.Replace(sessionCaddyfile, change[0], change[1], 1)
		if bad == sessionCaddyfile {
			t.Fatalf("the change %q does not apply", change[0])
		}
		path := filepath.Join(t.TempDir(), "Caddyfile")
		writeFile(t, path, render(t, bad, g.Ports))
		out, err := run(t, nil, "validate", "--config", path, "--adapter", "caddyfile")
		if err == nil || !strings.Contains(strings.ReplaceAll(out, `\"`, `"`), want) {
			t.Errorf("%q: %v, want %q in:\n%s", change[1], err, want, out)
		}
	}
}
