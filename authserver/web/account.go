package web

// The account page: the applications a person allowed, each removable, and
// signing out. GitHub's "Authorized OAuth Apps", for tokengate's people.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// PageApplication is one application on the account page: every grant the
// person gave it, as one.
type PageApplication struct {
	// Name, Website and DocumentHost are as PageClient has them.
	ClientID, Name, Website, DocumentHost string
	// Scopes are what the application may do, every grant's together.
	Scopes []PageScope
	// Resources are the APIs its grants are for (RFC 8707); none for
	// tokengate's own audience.
	Resources []string
	// Authorized is when the person first allowed it; LastUsed when it
	// last got a token (to the minute), both in words.
	Authorized, LastUsed string
	// Login says how the person signed in when they allowed it.
	Login string
	// ByOrganisation says their organisation allowed it for them (an
	// identity assertion), without a consent page.
	ByOrganisation bool
	// Actors are the services that acted for the person with its access
	// (token exchange), by name where they are clients here.
	Actors []string
	// grants are its grant IDs, revoked together.
	grants []string
}

// ServeAccount shows (GET) the signed-in person's applications and takes
// (POST) a "Remove access".
func (s *Service) ServeAccount(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.renderError(w, http.StatusMethodNotAllowed, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodPost), nil)
		return
	}
	user := s.currentUser(r)
	if user == nil {
		s.redirectTo(w, r, PathLogin, url.Values{"return_to": {s.issuer.Path + PathAccount}})
		return
	}
	sess := s.ensureSession(w, r)
	ctx, cancel := oauth.RequestContext(r)
	defer cancel()
	apps, err := s.accountApplications(ctx, user.subject)
	if err != nil {
		s.renderError(w, http.StatusServiceUnavailable, s.failures.Store("listing a person's grants", err), nil)
		return
	}
	data := &PageData{Title: "Connected applications", User: user.display, Applications: apps, Action: s.issuer.Path + PathAccount,
		SignOutAction: s.issuer.Path + PathLogout, CSRFToken: s.csrfToken(sess)}
	if r.Method == http.MethodGet {
		s.renderPage(w, http.StatusOK, "account.html", data)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxFormBytes)
	if err := r.ParseForm(); err != nil || !s.checkCSRF(r, r.PostForm.Get("csrf_token"), sess) {
		data.Error = "This form expired or did not come from this site. Please try again."
		s.renderPage(w, http.StatusForbidden, "account.html", data)
		return
	}
	clientID := r.PostForm.Get("client_id")
	i := slices.IndexFunc(apps, func(a *PageApplication) bool { return a.ClientID == clientID })
	if r.PostForm.Get("action") != "remove" || i < 0 {
		data.Error = "That application has no access to remove."
		s.renderPage(w, http.StatusBadRequest, "account.html", data)
		return
	}
	// Revoking the grants is forgetting the consent: it was theirs.
	for _, id := range apps[i].grants {
		if _, err := s.tokens.RevokeGrant(ctx, id, "the person, on the account page"); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.renderError(w, http.StatusServiceUnavailable, s.failures.Store("revoking a grant", err), nil)
			return
		}
	}
	// The page is rendered here rather than redirected to: a message
	// carried in a URL would let anyone's link put an application's name
	// (its own claim, for a self-registered one) into this page's words.
	removed := cmp.Or(apps[i].DocumentHost, apps[i].Name)
	if data.Applications, err = s.accountApplications(ctx, user.subject); err != nil {
		s.renderError(w, http.StatusServiceUnavailable, s.failures.Store("listing a person's grants", err), nil)
		return
	}
	data.Message = removed + " no longer has access to your account."
	s.renderPage(w, http.StatusOK, "account.html", data)
}

// accountApplications groups a person's live grants by application.
func (s *Service) accountApplications(ctx context.Context, subject string) ([]*PageApplication, error) {
	grants, err := s.tokens.LiveGrants(ctx, store.GrantQuery{Subject: subject})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var apps []*PageApplication
	byClient := map[string]*PageApplication{}
	first, last := map[string]time.Time{}, map[string]time.Time{}
	scopes := map[string][]string{}
	for _, g := range grants {
		a := byClient[g.ClientID]
		if a == nil {
			a = &PageApplication{ClientID: g.ClientID, Name: DisplayText(g.ClientID), Login: s.loginName(g.Login)}
			if c, _, err := s.clients.Lookup(ctx, g.ClientID); err == nil { // none for a client since deleted
				a.Name, a.DocumentHost, a.Website = clientIdentity(c)
				a.Name = cmp.Or(a.Name, DisplayText(g.ClientID))
			}
			byClient[g.ClientID], first[g.ClientID] = a, g.CreatedAt
			apps = append(apps, a)
		}
		a.grants = append(a.grants, g.ID)
		a.ByOrganisation = a.ByOrganisation || g.Via == store.ViaIDJAG
		for _, actor := range g.Actors {
			name := DisplayText(actor)
			if c, _, err := s.clients.Lookup(ctx, actor); err == nil && c.Name != "" {
				name = DisplayText(c.Name)
			}
			if !slices.Contains(a.Actors, name) {
				a.Actors = append(a.Actors, name)
			}
		}
		for _, sc := range strings.Fields(g.Scope) {
			if !slices.Contains(scopes[g.ClientID], sc) {
				scopes[g.ClientID] = append(scopes[g.ClientID], sc)
			}
		}
		if g.Resource != "" && !slices.Contains(a.Resources, g.Resource) {
			a.Resources = append(a.Resources, g.Resource)
		}
		if g.CreatedAt.Before(first[g.ClientID]) {
			first[g.ClientID] = g.CreatedAt
		}
		if g.LastUsedAt.After(last[g.ClientID]) {
			last[g.ClientID] = g.LastUsedAt
		}
	}
	for _, a := range apps {
		a.Scopes = s.pageScopes(strings.Join(scopes[a.ClientID], " "))
		a.Authorized, a.LastUsed = first[a.ClientID].UTC().Format("2 January 2006"), ago(now, last[a.ClientID])
	}
	return apps, nil
}

// loginName says, for a person, how they signed in.
func (s *Service) loginName(login string) string {
	switch login {
	case LoginPassword:
		return "username and password"
	case LoginUpstream, "":
		return "this site's sign-in"
	}
	if p := s.people.providers[login]; p != nil {
		return p.DisplayName()
	}
	return login
}

// ago says how long before now t was, as a person would.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < store.GrantTouchInterval:
		return "within the last minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
	return "on " + t.UTC().Format("2 January 2006")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
