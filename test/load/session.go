package main

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"time"

	"github.com/tokengate/tokengate/internal/persontest"
)

// With -session the load command measures session_auth on one instance:
//
//   - a request with a fresh session (the site's cookie; the access token
//     forwarded) against bearer_auth on the same route shape, both loaded
//     at once, half the connections each;
//
//   - the sign-in round trip of a person already signed in at the issuer:
//     the navigation, the authorization answered from the issuer's
//     session, the code's exchange at the callback, the session stored,
//     and the app's page, one at a time.
//
//     go run ./test/load -session
func measureSessions(bin, hash, up string) {
	in := start(bin, "ES256", hash, up, "")
	defer in.stop()
	site := in.url(in.p.Session, "/")
	p := persontest.New("load", "hashed-secret")
	signIn := func() error {
		res, err := p.Get(site)
		if err != nil {
			return err
		}
		if res.Redirect != nil {
			back, err := p.Authorize(res.Redirect.String())
			if err != nil {
				return err
			}
			if res, err = p.Get(back.String()); err != nil {
				return err
			}
		}
		if res.Page == nil || res.Page.Status != http.StatusOK {
			return fmt.Errorf("the app's page after sign-in: %+v", res)
		}
		return nil
	}
	if err := signIn(); err != nil {
		die("signing in: %v", err)
	}
	// One browser's session, shared by the connections as one page's
	// requests are, its cookie sent as the bearer side sends its token
	// (a header made once: a cookie jar's work would be the generator's,
	// on the same cores).
	siteURL, _ := url.Parse(site)
	var cookie string
	for _, c := range p.HTTP.Jar.Cookies(siteURL) {
		if c.Name == "tg_session" {
			cookie = c.String()
		}
	}
	if cookie == "" {
		die("no session cookie after signing in")
	}
	sessionGet := func(int) error {
		req, _ := http.NewRequest("GET", site, nil)
		req.Header.Set("Cookie", cookie)
		return do(req, http.StatusOK)
	}
	tok := in.token("plain", "plain-secret")
	bearerGet := func(int) error { return get(in.url(in.p.Bearer, "/"), tok) }
	pair := loadTogether(*concurrency, 2**duration, scenario{"bearer_auth + reverse_proxy (together)", bearerGet},
		scenario{"session_auth + reverse_proxy, a fresh session (together)", sessionGet})
	// Loaded at once, the two sides share the server's queue; alone, in
	// alternating rounds, each shows its own cost too.
	alt := alternatingRatio(scenario{"bearer_auth + reverse_proxy", bearerGet}, scenario{"session_auth + reverse_proxy, a fresh session", sessionGet})
	target("a request with a session ≥ 0.95 × bearer_auth", pair[1].rps >= 0.95*pair[0].rps, "%.2f× (both at once; %.2f× in alternating rounds)",
		pair[1].rps/pair[0].rps, alt)

	// The sign-in round trip: the site's session forgotten each time,
	// the issuer's kept (single sign-on), one at a time.
	var lat []time.Duration
	issuer, _ := url.Parse(in.url(in.p.Auth, "/"))
	// Cookies go by host, not port: the site's are the issuer's too here.
	issuerCookies := slices.DeleteFunc(p.HTTP.Jar.Cookies(issuer), func(c *http.Cookie) bool { return c.Name != "tokengate_session" })
	for deadline := time.Now().Add(*duration); time.Now().Before(deadline); {
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(issuer, issuerCookies)
		p.HTTP.Jar = jar
		t0 := time.Now()
		if err := signIn(); err != nil {
			die("a sign-in round trip: %v", err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	fmt.Printf("%-48s %6d rounds   p50 %8s   p99 %8s\n", "sign-in round trip (signed in at the issuer)", len(lat),
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))
}
