package test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
)

// The authorization code set-up: a person (mark), a confidential web app and
// a public native app, an API behind bearer_auth.
const authCodeCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client droplet {
			name "The Droplet Book"
			website https://dropletbook.com
			secret droplet-secret
			redirect_uri https://dropletbook.example/callback
			grant authorization_code refresh_token
			scope read write
		}
		client cli {
			name "Droplet CLI"
			redirect_uri http://127.0.0.1/callback
			grant authorization_code refresh_token
			scope read
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe {
			name "Mark E. Mark"
		}
	}
}
` + authAndAPISites

// authAndAPISites serve the authorization server and an API behind
// bearer_auth that tells the upstream who called.
const authAndAPISites = `http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth read
	reverse_proxy {{.Upstream}} {
		header_up X-User {http.auth.user.id}
	}
}
`

// markPassword is the plain text of the hash above.
const markPassword = readerSecret

func oauthConfig(g *gateway, id, secret, redirect string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: g.AuthURL() + "/oauth/authorize", TokenURL: g.AuthURL() + "/oauth/token"}}
}

// authorize runs the browser part of the flow for cfg and returns the code.
func authorize(t *testing.T, g *gateway, p *persontest.Person, cfg *oauth2.Config, verifier string) string {
	t.Helper()
	back, err := p.Authorize(cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	q := back.Query()
	if q.Get("state") != "st4te" || q.Get("iss") != g.Ports.Issuer || q.Get("code") == "" {
		t.Fatalf("callback %s", back)
	}
	return q.Get("code")
}

func TestAuthorizationCodeWithOAuth2Client(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(authCodeCaddyfile)
		ctx := context.Background()

		for _, tc := range []struct {
			name string
			cfg  *oauth2.Config
		}{
			{"confidential", oauthConfig(g, "droplet", "droplet-secret", "https://dropletbook.example/callback", "read", "write")},
			{"public", oauthConfig(g, "cli", "", "http://127.0.0.1:45678/callback", "read")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := persontest.New("mark", markPassword)
				verifier := oauth2.GenerateVerifier()
				code := authorize(t, g, p, tc.cfg, verifier)
				if strings.Join(p.Pages, ",") != "login,consent" {
					t.Fatalf("pages %v", p.Pages)
				}
				tok, err := tc.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatal(err)
				}
				if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
					t.Fatalf("token %+v", tok)
				}

				// The API sees mark.
				resp, err := tc.cfg.Client(ctx, tok).Get(g.APIURL() + "/me")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"user":"mark"`) {
					t.Fatalf("API: %d %s", resp.StatusCode, body)
				}

				// The token source refreshes on its own once the token expires.
				expired := *tok
				expired.Expiry = time.Now().Add(-time.Minute)
				fresh, err := tc.cfg.TokenSource(ctx, &expired).Token()
				if err != nil {
					t.Fatal(err)
				}
				if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
					t.Fatal("refresh did not rotate the tokens")
				}
				if code := callAPI(t, g, fresh.AccessToken); code != 200 {
					t.Fatalf("refreshed token: %d", code)
				}

				// Once its successor has been used, presenting the rotated
				// refresh token again revokes the whole grant: bearer_auth
				// now refuses the fresh token.
				if _, err := tc.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: expired.Expiry}).Token(); err != nil {
					t.Fatal(err)
				}
				_, err = tc.cfg.TokenSource(ctx, &expired).Token()
				var re *oauth2.RetrieveError
				if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
					t.Fatalf("refresh token reuse: %v", err)
				}
				if code := callAPI(t, g, fresh.AccessToken); code != 401 {
					t.Fatalf("token of a revoked grant: %d", code)
				}

				// A code is single use; the replay is refused.
				if _, err := tc.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
					t.Fatalf("code replay: %v", err)
				}

				// The reuse revoked the grant, and the consent was the
				// grant's: the person is asked again (the session spares
				// the sign-in). Allowed again and redeemed, the consent is
				// remembered: the next authorization skips both pages.
				p.Pages = nil
				again := authorize(t, g, p, tc.cfg, verifier)
				if strings.Join(p.Pages, ",") != "consent" {
					t.Fatalf("after the grant was revoked the authorization showed %v, want the consent page alone", p.Pages)
				}
				if _, err := tc.cfg.Exchange(ctx, again, oauth2.VerifierOption(verifier)); err != nil {
					t.Fatal(err)
				}
				p.Pages = nil
				authorize(t, g, p, tc.cfg, verifier)
				if len(p.Pages) != 0 {
					t.Fatalf("second authorization showed %v", p.Pages)
				}
			})
		}
	})
}

// upstreamGlobal is the global options of the upstream-authentication
// tests: a public client that skips consent, and no users of tokengate's own.
const upstreamGlobal = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		client cli {
			redirect_uri http://127.0.0.1/callback
			grant authorization_code
			scope read
			skip_consent
		}
	}
}
`

// openAuthURL opens cfg's authorization link (prep adds credentials) and
// returns the answer without following it.
func openAuthURL(t *testing.T, cfg *oauth2.Config, verifier string, prep func(*http.Request)) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), nil)
	prep(req)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// A user authenticated by Caddy's basic_auth in the same route skips the
// login page, as the README's set-up shows.
func TestUpstreamAuthenticatedUser(t *testing.T) {
	const caddyfile = upstreamGlobal + `http://127.0.0.1:{{.Auth}} {
	@people path /oauth/authorize /consent /login
	basic_auth @people {
		alice $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
	}
	oauth2_server
}
`
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	g.start(caddyfile)
	cfg := oauthConfig(g, "cli", "", "http://127.0.0.1:45678/callback", "read")
	verifier := oauth2.GenerateVerifier()
	resp := openAuthURL(t, cfg, verifier, func(r *http.Request) { r.SetBasicAuth("alice", readerSecret) })
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || back.Port() != "45678" || back.Query().Get("code") == "" {
		t.Fatalf("basic_auth user: %d %s", resp.StatusCode, back)
	}
	tok, err := cfg.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := decodeClaims(tok.AccessToken)
	if h["sub"] != "alice" {
		t.Fatalf("sub %v, want the basic_auth user", h["sub"])
	}
}

// forward_auth with copy_headers, published as {http.auth.user.id} by map
// (as the README shows): the login page is skipped for the user the
// authentication service names, and a client cannot spoof that header.
func TestForwardAuthUser(t *testing.T) {
	authsvc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "sso=bob" {
			http.Error(w, "sign in at the SSO first", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Remote-User", "bob")
	}))
	t.Cleanup(authsvc.Close)
	caddyfile := upstreamGlobal + `http://127.0.0.1:{{.Auth}} {
	@people path /oauth/authorize /consent /login
	forward_auth @people ` + strings.TrimPrefix(authsvc.URL, "http://") + ` {
		uri /verify
		copy_headers Remote-User
	}
	map @people {http.request.header.Remote-User} {http.auth.user.id} {
		~(.+) ${1}
	}
	oauth2_server
}
`
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	g.start(caddyfile)
	cfg := oauthConfig(g, "cli", "", "http://127.0.0.1:45678/callback", "read")
	verifier := oauth2.GenerateVerifier()
	get := func(hdr ...string) *http.Response {
		return openAuthURL(t, cfg, verifier, func(r *http.Request) {
			for i := 0; i < len(hdr); i += 2 {
				r.Header.Set(hdr[i], hdr[i+1])
			}
		})
	}
	// Not signed in at the SSO: the auth service's 401 comes back.
	if resp := get("Remote-User", "mallory"); resp.StatusCode != 401 {
		t.Fatalf("without SSO: %d", resp.StatusCode)
	}
	resp := get("Cookie", "sso=bob", "Remote-User", "mallory")
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || back.Query().Get("code") == "" {
		t.Fatalf("with SSO: %d %s\n%s", resp.StatusCode, back, g.log)
	}
	tok, err := cfg.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := decodeClaims(tok.AccessToken); c["sub"] != "bob" {
		t.Fatalf("sub %v, want the user the auth service named", c["sub"])
	}
}
