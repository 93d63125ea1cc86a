// Command oidc-app is a web application that signs people in through
// tokengate as its OpenID Provider, with coreos/go-oidc and
// golang.org/x/oauth2: the guide docs/guides/openid-connect.md runs it
// next to examples/openid.Caddyfile.
//
//	go run ./examples/oidc-app
//
// It serves http://127.0.0.1:8162: / signs the person in (or says who is
// signed in), /logout signs them out at tokengate too (RP-initiated
// logout), /backchannel-logout is where tokengate says a session ended
// elsewhere, and /sessions lists who is signed in, for the guide's curl.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"sort"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	issuer = "http://localhost:8160"
	self   = "http://127.0.0.1:8162"
)

// person is who signed in, in one of the application's sessions.
type person struct {
	name, email string
	// sid is tokengate's session, which a back-channel logout names;
	// idToken is the logout's hint.
	sid, idToken string
}

// app holds its sessions (by its own cookie) and the sign-ins under way.
type app struct {
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider

	mu       sync.Mutex
	sessions map[string]*person
	pending  map[string][2]string // state → PKCE verifier, nonce
}

func main() {
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer) // OpenID Connect Discovery
	if err != nil {
		log.Fatalf("is tokengate running on %s? %v", issuer, err)
	}
	a := &app{provider: provider, verifier: provider.Verifier(&oidc.Config{ClientID: "notes"}),
		sessions: map[string]*person{}, pending: map[string][2]string{},
		conf: &oauth2.Config{ClientID: "notes", ClientSecret: "notes-secret", Endpoint: provider.Endpoint(),
			RedirectURL: self + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}}
	http.HandleFunc("/", a.home)
	http.HandleFunc("/callback", a.callback)
	http.HandleFunc("/logout", a.logout)
	http.HandleFunc("POST /backchannel-logout", a.backchannelLogout)
	http.HandleFunc("/sessions", a.list)
	log.Printf("Team Notes on %s", self)
	log.Fatal(http.ListenAndServe("127.0.0.1:8162", nil))
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// current is the request's session's person, and the session's cookie.
func (a *app) current(r *http.Request) (*person, string) {
	c, err := r.Cookie("notes_session")
	if err != nil {
		return nil, ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[c.Value], c.Value
}

// home greets the signed-in person, or sends them to sign in with PKCE and
// a nonce.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	if p, _ := a.current(r); p != nil {
		fmt.Fprintf(w, "Signed in as %s <%s>. Sign out: %s/logout\n", p.name, p.email, self)
		return
	}
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	a.mu.Lock()
	a.pending[state] = [2]string{verifier, nonce}
	a.mu.Unlock()
	http.Redirect(w, r, a.conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback takes the code, checks the ID token (signature, issuer,
// audience, expiry, nonce, at_hash) and starts a session.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	pending, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	if !ok {
		http.Error(w, "unknown state: start again at "+self, http.StatusBadRequest)
		return
	}
	tok, err := a.conf.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(pending[0]))
	if err != nil {
		http.Error(w, "exchanging the code: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(r.Context(), raw)
	if err == nil && idt.Nonce != pending[1] {
		err = fmt.Errorf("the nonce is not this sign-in's")
	}
	if err == nil {
		err = idt.VerifyAccessToken(tok.AccessToken)
	}
	var claims struct{ Name, Email, SID string }
	if err == nil {
		err = idt.Claims(&claims)
	}
	if err != nil {
		http.Error(w, "the ID token: "+err.Error(), http.StatusBadGateway)
		return
	}
	id := random()
	a.mu.Lock()
	a.sessions[id] = &person{name: claims.Name, email: claims.Email, sid: claims.SID, idToken: raw}
	a.mu.Unlock()
	log.Printf("%s signed in", claims.Name)
	http.SetCookie(w, &http.Cookie{Name: "notes_session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, self+"/", http.StatusFound)
}

// logout ends the application's session and sends the person to
// tokengate's end_session_endpoint, which signs them out there and sends
// them back.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	p, id := a.current(r)
	if p == nil {
		http.Redirect(w, r, self+"/", http.StatusFound)
		return
	}
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := a.provider.Claims(&meta); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	u := meta.EndSession + "?" + url.Values{"id_token_hint": {p.idToken}, "post_logout_redirect_uri": {self + "/"}}.Encode()
	http.Redirect(w, r, u, http.StatusFound)
}

// backchannelLogout ends the sessions tokengate says ended: the person
// signed out on tokengate's account page, in another application, or an
// administrator revoked them.
func (a *app) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	lt, err := a.verifier.VerifyLogout(r.Context(), r.PostFormValue("logout_token"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	for id, p := range a.sessions {
		if p.sid == lt.SessionID {
			delete(a.sessions, id)
			log.Printf("%s signed out elsewhere: session ended", p.name)
		}
	}
	a.mu.Unlock()
}

// list says who is signed in.
func (a *app) list(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	var names []string
	for _, p := range a.sessions {
		names = append(names, p.name)
	}
	a.mu.Unlock()
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(w, "nobody is signed in")
	}
	for _, n := range names {
		fmt.Fprintf(w, "signed in: %s\n", n)
	}
}
