package authserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/internal/persontest"
)

// Every page form (sign-in, consent, device, Remove access, sign-out)
// refuses a post that another site's page made, even with this session's
// CSRF token in it: the browser's Origin, or its Sec-Fetch-Site, says so.
func TestPageFormsRefuseOtherSites(t *testing.T) {
	for name, forged := range map[string]http.Header{
		"Origin":         {"Origin": {"http://evil.example"}},
		"Sec-Fetch-Site": {"Sec-Fetch-Site": {"cross-site"}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p := e.person()
			// evil shares p's cookies: the attacker's page makes p's browser post.
			evil := *p
			evil.PostHeaders = forged
			refused := func(what string, f *persontest.Form) {
				t.Helper()
				res, err := evil.Post(f.Action, f.Fields)
				if err != nil {
					t.Fatal(err)
				}
				if res.Page == nil || res.Page.Status != http.StatusForbidden {
					t.Fatalf("%s posted from another site: %+v", what, res)
				}
			}
			form := func(page *persontest.Page) *persontest.Form {
				t.Helper()
				f, err := page.Form()
				if err != nil {
					t.Fatal(err)
				}
				return f
			}

			res, err := p.Get(e.stdAuth())
			if err != nil {
				t.Fatal(err)
			}
			login := form(res.Page)
			login.Fields.Set("username", "mark")
			login.Fields.Set("password", markPassword)
			refused("the sign-in form", login)
			if res, err = p.Post(login.Action, login.Fields); err != nil || !res.Page.Has("decision") {
				t.Fatalf("signing in from the page itself: %v %+v", err, res)
			}
			consent := form(res.Page)
			consent.Fields.Set("decision", "approve")
			refused("the consent form", consent)
			back, err := p.Post(consent.Action, consent.Fields)
			if err != nil || back.Redirect == nil || back.Redirect.Query().Get("code") == "" {
				t.Fatalf("consenting from the page itself: %v %+v", err, back)
			}

			m := e.startDevice(t, nil)
			dev, err := p.Get(e.local(m["verification_uri"]))
			if err != nil {
				t.Fatal(err)
			}
			code := form(dev.Page)
			code.Fields.Set("user_code", m["user_code"].(string))
			refused("the device form", code)

			e.exchange(back.Redirect.Query().Get("code"))
			page := e.account(t, p)
			refused("Remove access", &persontest.Form{Action: e.http.URL + "/account", Fields: removal(t, page, "webapp")})
			if after := e.account(t, p); !strings.Contains(after.Body, `value="webapp"`) {
				t.Fatal("a cross-site Remove access removed the application")
			}
			signOut, err := page.FormTo("/logout")
			if err != nil {
				t.Fatal(err)
			}
			refused("sign-out", signOut)
			if res, err := p.Get(e.http.URL + "/account"); err != nil || res.Page.Has("password") {
				t.Fatal("a cross-site sign-out signed the person out")
			}
		})
	}
}
