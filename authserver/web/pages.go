package web

// The HTML pages people see: templates, CSP and rendering.

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"go.uber.org/zap"
)

//go:embed pages
var embeddedPages embed.FS

// PageData is what every page template receives. Operators who replace the
// templates (the `templates` option) get exactly these fields.
type PageData struct {
	// Title of the page.
	Title string
	// Client is the application asking; nil when unknown.
	Client *PageClient
	// Scopes asked for (or, once Decided, granted), one entry per scope;
	// each prints as its description, or its name when it has none.
	Scopes []PageScope
	// Resource is the protected resource (RFC 8707) the access is for;
	// nil when the request names none.
	Resource *PageResource
	// Decided is set on the page after the person's decision.
	Decided bool
	// User is the signed-in person's display name (consent page).
	User string
	// Error is a message for the person; empty when there is none.
	Error string
	// Message is further explanation (error page): what the person can do.
	Message string
	// Detail is what went wrong in a developer's terms (error page), for
	// the person to pass on.
	Detail string
	// BackURL, on an error page, leads back to where the person can try
	// again (the sign-in page, after a login provider failed).
	BackURL string
	// Username pre-fills the login form after a failed attempt.
	Username string
	// Passwords makes the login page show the username and password form
	// (there are users, or no login provider).
	Passwords bool
	// Providers are the login page's "Sign in with …" links.
	Providers []PageProvider
	// UserCode is the device's code: pre-filled on the device page, shown
	// for comparison on its consent page.
	UserCode string
	// Action is the URL the page's form posts to.
	Action string
	// CSRFToken must be posted back as the csrf_token field.
	CSRFToken string
	// Hidden are further fields the form must post back unchanged.
	Hidden map[string]string
	// Applications are the signed-in person's (account page).
	Applications []*PageApplication
	// SignOutAction is the URL the sign-out form posts to (account page).
	SignOutAction string
	// StyleURL is the stylesheet's URL.
	StyleURL string
}

// PageClient describes the application on a page. Its texts are ready to
// show: names without invisible characters (DisplayText), hosts and URLs
// in ASCII (DisplayHost).
type PageClient struct {
	ID      string
	Name    string
	Website string
	// SelfRegistered says the application registered itself (RFC 7591),
	// or is described by a metadata document, so its name and website are
	// its own claims.
	SelfRegistered bool
	// DocumentHost, for an application whose client_id is the URL of its
	// metadata document, is that URL's host: the only identity of it
	// this server checked, so pages name it first and show Name as what
	// the application calls itself. Website is then empty unless it is
	// https on that host.
	DocumentHost string
	// RedirectHost is where the flow returns the person (consent page).
	RedirectHost string
}

// PageProvider is a login provider's link on the login page.
type PageProvider struct {
	Name string // what the button says: "Sign in with <Name>"
	URL  string
}

// PageResource is the API (an MCP server, say) an application asks to
// reach: its URL and, when its bearer_auth gives one, its resource_name.
type PageResource struct {
	URL  string
	Name string
}

// pages holds the parsed templates and the stylesheet.
type pages struct {
	tmpl  *template.Template
	style []byte
}

// loadPages parses the embedded templates, then the operator's files in dir
// (if any), which replace embedded ones of the same name.
func loadPages(dir string) (*pages, error) {
	sub, _ := fs.Sub(embeddedPages, "pages")
	t, err := template.ParseFS(sub, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing built-in pages: %w", err)
	}
	style, _ := fs.ReadFile(sub, "style.css")
	if dir != "" {
		files, err := filepath.Glob(filepath.Join(dir, "*.html"))
		if err != nil {
			return nil, fmt.Errorf("templates %s: %w", dir, err)
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if len(files) > 0 {
			if t, err = t.ParseFiles(files...); err != nil {
				return nil, fmt.Errorf("templates %s: %w", dir, err)
			}
		}
		if css, err := os.ReadFile(filepath.Join(dir, "style.css")); err == nil {
			style = css
		}
	}
	for _, name := range []string{"login.html", "consent.html", "error.html", "device.html", "device_done.html", "account.html", "logout.html", "signed_out.html"} {
		if t.Lookup(name) == nil {
			return nil, fmt.Errorf("templates: %s is missing", name)
		}
	}
	return &pages{tmpl: t, style: style}, nil
}

// renderPage writes a page with the headers every page carries: no framing,
// a strict CSP (no script at all; forms may post to this server and, where
// given, to the origin the flow will redirect to), no caching, no referrer.
func (s *Service) renderPage(w http.ResponseWriter, status int, name string, data *PageData, formTargets ...string) {
	data.StyleURL = s.issuer.Path + PathStyle
	var buf bytes.Buffer
	if err := s.pages.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("rendering page", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be rendered; the server log has the details", http.StatusInternalServerError)
		return
	}
	SetPageHeaders(w.Header(), formTargets...)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// SetPageHeaders sets the headers of an HTML page of tokengate's (the
// sign-in pages, the account page, the admin console): no script at all,
// styles and forms from this server only (forms also to formTargets, " "
// and an origin each), no framing, no caching, no referrer.
func SetPageHeaders(h http.Header, formTargets ...string) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; "+
		"form-action 'self'"+strings.Join(formTargets, "")+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

// ServeStyle serves the pages' style sheet.
func (s *Service) ServeStyle(w http.ResponseWriter, r *http.Request) {
	oauth.ServeDocument(w, r, "text/css; charset=utf-8", "public, max-age=3600", s.pages.style)
}

// renderError shows an error page: for requests that must not redirect
// (unknown client, bad redirect URI) and for people, not programs. It says
// what happened and what the person can do; the protocol's description is
// a detail line for whoever built the application.
func (s *Service) renderError(w http.ResponseWriter, status int, e *oauth.Error, client *client.Client) {
	data := &PageData{Title: "Something went wrong", Detail: e.Description + " (" + e.Code + ")"}
	switch status {
	case http.StatusForbidden: // an expired or foreign form: the description is for people
		data.Title, data.Error, data.Detail = "This page expired", upperFirst(e.Description), ""
		data.Message = "Go back to the application and start signing in again."
	case http.StatusServiceUnavailable:
		data.Error = "Signing in is not available right now."
		data.Message = "Please try again in a few minutes."
	case http.StatusMethodNotAllowed:
		data.Error = "This page cannot be opened this way."
		data.Message = "Open the link the application gave you."
	default:
		data.Title = "This link does not work"
		data.Error = "The application sent you here with a request this server cannot accept, so you cannot continue from here."
		data.Message = "Going back and trying again will not help: tell the application's makers, and pass on the detail below."
	}
	if client != nil {
		data.Client = pageClient(client)
	}
	s.renderPage(w, status, "error.html", data)
}

// upperFirst starts a sentence with a capital letter.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// PageScope is a scope on a page: its name, and the description the
// configuration gives it (scope_description), if any.
type PageScope struct {
	Name, Description string
}

// Text is what a person reads: the description, else the name.
func (p PageScope) Text() string {
	if p.Description != "" {
		return p.Description
	}
	return p.Name
}

// String lets templates print a scope as {{.}}.
func (p PageScope) String() string { return p.Text() }

// pageScopes are the scopes of a space-separated list, described.
func (s *Service) pageScopes(scope string) []PageScope {
	var out []PageScope
	for _, name := range strings.Fields(scope) {
		out = append(out, PageScope{Name: name, Description: s.cfg.ScopeDescriptions[name]})
	}
	return out
}

func pageClient(c *client.Client) *PageClient {
	if c == nil {
		return nil
	}
	p := &PageClient{ID: c.ID, SelfRegistered: client.SelfDescribed(c)}
	p.Name, p.DocumentHost, p.Website = clientIdentity(c)
	return p
}

// clientIdentity is how pages name a client: its name and website, and,
// for a metadata-document client, the document's host, with the website
// only when it is https on that host (anything else is its claim to be
// someone it was not checked to be).
func clientIdentity(c *client.Client) (name, documentHost, website string) {
	name = DisplayText(c.Name)
	if c.Website != "" {
		website = DisplayURL(c.Website)
	}
	if c.Source != client.SourceMetadataDocument {
		return name, "", website
	}
	doc, _ := url.Parse(c.ID)
	documentHost = DisplayHost(doc.Host)
	if w, err := url.Parse(c.Website); err != nil || w.Scheme != "https" || !strings.EqualFold(w.Hostname(), doc.Hostname()) {
		website = ""
	}
	return name, documentHost, website
}

// pageClientTo is pageClient for a flow that returns to redirectURI.
func pageClientTo(c *client.Client, redirectURI string) *PageClient {
	p := pageClient(c)
	if u, err := url.Parse(redirectURI); err == nil {
		p.RedirectHost = DisplayHost(u.Host)
		if p.RedirectHost == "" {
			p.RedirectHost = u.Scheme + ":"
		}
	}
	return p
}

// pageResource describes a grant's resource for the pages; nil for none.
func (s *Service) pageResource(resource string) *PageResource {
	if resource == "" {
		return nil
	}
	return &PageResource{URL: resource, Name: s.tokens.Resources().Name(resource)}
}
