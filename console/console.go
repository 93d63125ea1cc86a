// Package console is tokengate's admin console: HTML pages over the
// authorization server's administration (clients, grants), the recent
// audit events and charts of the last hour. It works without JavaScript
// under a CSP as strict as the sign-in pages': the charts are inline SVG
// drawn here. It authenticates nobody: the embedding server puts it
// behind its own authentication.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/admin"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/web"
)

//go:embed pages
var pagesFS embed.FS

// Config is what a Console needs.
type Config struct {
	// Admin is the authorization server the console administers.
	Admin *admin.Admin
	// Audit holds the recent audit events; nil shows none.
	Audit *authserver.AuditRing
	// History holds the charts' counts; nil draws empty charts.
	History *History
	// User names who is at the console, as the authentication before it
	// found them (for the audit lines); "" when it does not say.
	User   func(*http.Request) string
	Logger *zap.Logger
}

// Console serves the console's pages below wherever it is mounted: the
// path's last segment names the page, so that it needs no base path.
type Console struct {
	cfg   Config
	tmpl  *template.Template
	style []byte
}

// New parses the console's pages.
func New(cfg Config) (*Console, error) {
	if cfg.Admin == nil {
		return nil, errors.New("console: an authorization server is required")
	}
	if cfg.History == nil {
		cfg.History = new(History)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	sub, _ := fs.Sub(pagesFS, "pages")
	t, err := template.New("").Funcs(template.FuncMap{"when": when, "name": web.DisplayText, "url": web.DisplayURL}).ParseFS(sub, "*.html")
	if err != nil {
		return nil, err
	}
	style, err := fs.ReadFile(sub, "console.css")
	if err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, tmpl: t, style: style}, nil
}

// page is what every console template receives.
type page struct {
	Title string
	// Nav is the current page: "", "clients", "grants", "audit".
	Nav string
	// CSRFToken must come back as csrf_token with every form.
	CSRFToken string
	// Notice and Error are messages for the administrator.
	Notice, Error string
	// Secret is a client whose secret was just made: shown once.
	Secret *client.Info
	// Confirm is a client about to be deleted.
	Confirm *client.Info
	Charts  []*chart
	Events  []authserver.AuditEvent
	// MoreEvents says the overview shows only the latest events.
	MoreEvents bool
	Clients    []*client.Info
	// Rates are the listed clients' traffic at rate-limited routes.
	Rates  map[string]ClientRate
	Grants []*admin.GrantInfo
	// Subject and ClientID are the grants page's query.
	Subject, ClientID string
	// Searched says the grants page was asked for a query.
	Searched bool
}

// overviewEvents is how many audit events the overview shows.
const overviewEvents = 15

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, name := path.Split(r.URL.Path)
	if name == "console.css" {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(c.style)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "the console takes GET and POST", http.StatusMethodNotAllowed)
		return
	}
	p := &page{Nav: name, CSRFToken: c.csrfToken(w, r)}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil || !c.checkCSRF(r) {
			p.Error = "This form expired or did not come from this console: nothing was changed. Try again."
			c.render(w, r, http.StatusForbidden, p)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	r = r.WithContext(ctx)
	switch name {
	case "":
		c.overview(w, r, p)
	case "clients":
		c.clients(w, r, p)
	case "grants":
		c.grants(w, r, p)
	case "audit":
		p.Title, p.Events = "Audit events", c.cfg.Audit.Recent()
		c.render(w, r, http.StatusOK, p)
	default:
		p.Title, p.Nav, p.Error = "Not found", "", "The console has no page "+name+"."
		c.render(w, r, http.StatusNotFound, p)
	}
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, p *page) {
	if r.Method == http.MethodPost {
		p.Error = "This page takes no form."
		c.render(w, r, http.StatusBadRequest, p)
		return
	}
	p.Title, p.Charts = "Overview", c.charts(time.Now())
	p.Events = c.cfg.Audit.Recent()
	if len(p.Events) > overviewEvents {
		p.Events, p.MoreEvents = p.Events[:overviewEvents], true
	}
	c.render(w, r, http.StatusOK, p)
}

// clients lists the clients (GET) and registers, rotates and deletes them
// (POST action=create|rotate|delete).
func (c *Console) clients(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title = "Clients"
	status := http.StatusOK
	ad := c.cfg.Admin
	if r.Method == http.MethodPost {
		f := r.PostForm
		id := f.Get("client_id")
		var err error
		switch f.Get("action") {
		case "create":
			var ci *client.Info
			if ci, err = ad.RegisterClient(r.Context(), registration(f)); err == nil {
				p.Secret, p.Notice = ci, "Registered "+web.DisplayText(ci.Name)+"."
				c.log(r, "client registered in the console", ci.ID)
			}
		case "rotate":
			var ci *client.Info
			if ci, err = ad.RotateSecret(r.Context(), id); err == nil {
				p.Secret, p.Notice = ci, "Gave "+web.DisplayText(ci.Name)+" a new secret: the old one no longer works."
				c.log(r, "client secret rotated in the console", id)
			}
		case "delete":
			if f.Get("confirm") != "yes" {
				if p.Confirm, err = ad.ClientInfo(r.Context(), id); err == nil {
					p.Title = "Delete " + web.DisplayText(p.Confirm.Name) + "?"
					c.render(w, r, http.StatusOK, p)
					return
				}
				break
			}
			if err = ad.DeleteClient(r.Context(), id); err == nil {
				p.Notice = "Deleted client " + id + " and revoked its tokens."
				c.log(r, "client deleted in the console", id)
			}
		default:
			err = oauth.ErrInvalidRequest("action must be create, rotate or delete")
		}
		if err != nil {
			status, p.Error = c.failure(r, err)
		}
	}
	list, err := ad.Clients(r.Context())
	if err != nil {
		status, p.Error = c.failure(r, err)
	}
	p.Clients = list
	p.Rates = map[string]ClientRate{}
	now := time.Now()
	for _, ci := range list {
		p.Rates[ci.ID] = c.cfg.History.Rate(ci.ID, now)
	}
	c.render(w, r, status, p)
}

// registration reads the register form.
func registration(f url.Values) *client.Info {
	reg := &client.Info{Name: strings.TrimSpace(f.Get("name")), Website: strings.TrimSpace(f.Get("website")),
		Scope: f.Get("scope"), GrantTypes: f["grant"], Public: f.Get("public") == "on", RequireDPoP: f.Get("require_dpop") == "on"}
	for _, line := range strings.Split(f.Get("redirect_uris"), "\n") {
		if u := strings.TrimSpace(line); u != "" {
			reg.RedirectURIs = append(reg.RedirectURIs, u)
		}
	}
	return reg
}

// grants lists a person's or a client's grants (GET ?subject=|client_id=)
// and revokes one (POST action=revoke).
func (c *Console) grants(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title = "Grants"
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	p.Subject, p.ClientID = strings.TrimSpace(q.Get("subject")), strings.TrimSpace(q.Get("client_id"))
	status := http.StatusOK
	if r.Method == http.MethodPost {
		id := r.PostForm.Get("grant_id")
		if r.PostForm.Get("action") != "revoke" || id == "" {
			status, p.Error = http.StatusBadRequest, "Choose a grant to revoke."
		} else if err := c.cfg.Admin.RevokeGrant(r.Context(), id, "console "+c.user(r)); err != nil {
			status, p.Error = c.failure(r, err)
		} else {
			p.Notice = "Revoked grant " + id + ": its tokens no longer work."
		}
	}
	if p.Subject != "" && p.ClientID != "" {
		status, p.Error = http.StatusBadRequest, "Search by a user or by a client, not both."
	} else if p.Subject != "" || p.ClientID != "" {
		p.Searched = true
		list, err := c.cfg.Admin.Grants(r.Context(), store.GrantQuery{Subject: p.Subject, ClientID: p.ClientID})
		if err != nil {
			status, p.Error = c.failure(r, err)
		}
		p.Grants = list
	}
	c.render(w, r, status, p)
}

// failure is the status and message for an administration error: the
// admin API's (admin.Error); a failure of the store or the
// server is logged with its cause, and the store's told in the
// administrator's terms.
func (c *Console) failure(r *http.Request, err error) (int, string) {
	status, msg := admin.Error(err)
	if status >= http.StatusInternalServerError {
		c.cfg.Logger.Error("console: "+msg, zap.String("page", r.URL.Path), zap.Error(err))
	}
	if status == http.StatusServiceUnavailable {
		return status, "The store is unavailable right now; try again shortly."
	}
	return status, msg
}

func (c *Console) user(r *http.Request) string {
	if c.cfg.User == nil {
		return ""
	}
	return c.cfg.User(r)
}

// log notes who did what in the console (the authorization server's own
// audit line names the client, not who asked).
func (c *Console) log(r *http.Request, msg, clientID string) {
	c.cfg.Logger.Info(msg, zap.String("client_id", clientID), zap.String("by", c.user(r)))
}

// render writes a page with the sign-in pages' headers.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, p *page) {
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, "console.html", p); err != nil {
		c.cfg.Logger.Error("rendering a console page", zap.String("page", r.URL.Path), zap.Error(err))
		http.Error(w, "the page could not be rendered; the server log has the details", http.StatusInternalServerError)
		return
	}
	web.SetPageHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// The console's forms carry the value of a cookie only this site can set
// (a double-submit token): SameSite=Strict keeps it from cross-site posts,
// and on https the __Host- prefix from cookies a sibling subdomain plants.
// It needs no server state, so every instance accepts every form.
const csrfCookie = "tokengate_console"

func cookieName(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-" + csrfCookie
	}
	return csrfCookie
}

// csrfToken is the browser's token, set now if it has none.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(cookieName(r)); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	return token
}

// checkCSRF verifies a posted form: it came from this site (the sign-in
// pages' one origin check), and its token is the cookie's.
func (c *Console) checkCSRF(r *http.Request) bool {
	if !web.SameOriginForm(r) {
		return false
	}
	ck, err := r.Cookie(cookieName(r))
	token := r.PostForm.Get("csrf_token")
	return err == nil && len(ck.Value) >= 32 && subtle.ConstantTimeCompare([]byte(token), []byte(ck.Value)) == 1
}

// when shows a time to the minute, UTC; "never" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}
