// Package persontest plays a person in a browser without JavaScript: it
// follows tokengate's redirects with a cookie jar and fills in the login,
// consent and device pages by their documented field names (username,
// password, decision, user_code), posting back every hidden field. With
// Provider set it signs in through that login provider instead, on the
// provider's own pages (oidc-provider's: login, then confirm).
package persontest

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Person is one browser with its cookies.
type Person struct {
	HTTP     *http.Client
	Username string
	Password string
	// Decision is what the person answers on the consent page:
	// "approve" (the default) or "deny".
	Decision string
	// UserCode is what the person types on the device page; empty keeps
	// the code the page was pre-filled with.
	UserCode string
	// Provider, when set, is the login provider to sign in with: the login
	// page's "Sign in with <Provider>" link. ProviderLogin is the account
	// the person types at the provider, whose host is ProviderHost (the
	// only other host whose redirects are followed).
	Provider, ProviderLogin, ProviderHost string
	// PostHeaders go with every form post, over the Origin a browser
	// sends (the server's own, for a form of its page): a test's forged
	// Origin or Sec-Fetch-Site.
	PostHeaders http.Header
	device      bool
	home        string
	// Pages records the pages seen, in order: "login", "consent", ...
	Pages []string
	// Last is the last page seen.
	Last *Page
}

// New returns a person who signs in as username with password.
func New(username, password string) *Person {
	jar, _ := cookiejar.New(nil)
	return &Person{
		HTTP: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // redirects are followed by hand
		}},
		Username: username, Password: password, Decision: "approve",
	}
}

// Page is an HTML page the server answered with.
type Page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

// Form is a page's (first) form.
type Form struct {
	Action string
	Fields url.Values
}

var (
	formRe  = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"`)
	inputRe = regexp.MustCompile(`(?i)<input[^>]*\sname="([^"]*)"[^>]*\svalue="([^"]*)"`)
)

// Form parses the page's form: its action and the fields it carries values
// for (hidden ones, and pre-filled ones).
func (p *Page) Form() (*Form, error) {
	m := formRe.FindStringSubmatch(p.Body)
	if m == nil {
		return nil, fmt.Errorf("no form on the page at %s (status %d):\n%s", p.URL, p.Status, p.Body)
	}
	action, err := p.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, err
	}
	f := &Form{Action: action.String(), Fields: url.Values{}}
	for _, h := range inputRe.FindAllStringSubmatch(p.Body, -1) {
		f.Fields.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return f, nil
}

var formBlockRe = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)".*?</form>`)

// Forms parses every form of the page, as Form does the first.
func (p *Page) Forms() ([]*Form, error) {
	var out []*Form
	for _, m := range formBlockRe.FindAllStringSubmatch(p.Body, -1) {
		action, err := p.URL.Parse(html.UnescapeString(m[1]))
		if err != nil {
			return nil, err
		}
		f := &Form{Action: action.String(), Fields: url.Values{}}
		for _, h := range inputRe.FindAllStringSubmatch(m[0], -1) {
			f.Fields.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		out = append(out, f)
	}
	return out, nil
}

// FormWith is the page's form that carries value in field (a "Remove
// access" form names its client_id); FormTo the one posting to a URL
// ending in path.
func (p *Page) FormWith(field, value string) (*Form, error) {
	return p.findForm(func(f *Form) bool { return f.Fields.Get(field) == value }, field+"="+value)
}

// FormTo is the page's form posting to a URL whose path ends in path.
func (p *Page) FormTo(path string) (*Form, error) {
	return p.findForm(func(f *Form) bool { return strings.HasSuffix(f.Action, path) }, "posting to "+path)
}

func (p *Page) findForm(match func(*Form) bool, what string) (*Form, error) {
	forms, err := p.Forms()
	if err != nil {
		return nil, err
	}
	for _, f := range forms {
		if match(f) {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no form %s on the page at %s (status %d):\n%s", what, p.URL, p.Status, p.Body)
}

// Has reports whether the page has a field or button with that name.
func (p *Page) Has(name string) bool { return strings.Contains(p.Body, `name="`+name+`"`) }

// Result is where a walk through the server ended: a page, or a redirect
// away from the server (to the application).
type Result struct {
	Page     *Page
	Redirect *url.URL
}

// Get opens u and follows redirects within the server.
func (p *Person) Get(u string) (*Result, error) {
	return p.do(http.MethodGet, u, nil)
}

// Post submits form values to u and follows redirects within the server.
func (p *Person) Post(u string, form url.Values) (*Result, error) {
	return p.do(http.MethodPost, u, form)
}

func (p *Person) do(method, u string, form url.Values) (*Result, error) {
	for range 20 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return nil, err
		}
		// A browser loading a page says so (session_auth sends such a
		// request to sign in; a script's gets 401).
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			// A browser says where a posted form came from: here, a page
			// of the server it posts to.
			req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
			for k, v := range p.PostHeaders {
				req.Header[k] = v
			}
		}
		resp, err := p.HTTP.Do(req)
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			next, err := req.URL.Parse(loc)
			if err != nil {
				return nil, err
			}
			if !p.follows(req.URL, next) {
				return &Result{Redirect: next}, nil
			}
			method, u, form = http.MethodGet, next.String(), nil
			continue
		}
		return &Result{Page: &Page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(b)}}, nil
	}
	return nil, fmt.Errorf("more than 20 redirects from %s", u)
}

// follows says whether the person's browser stays in the flow from one
// URL to the next: the same server, to the provider, or from the provider
// back to the server the flow started at (anything else is the
// application's redirect URI: the end).
func (p *Person) follows(from, to *url.URL) bool {
	if p.home == "" {
		p.home = from.Host
	}
	switch {
	case to.Host == from.Host:
		return true
	case p.ProviderHost == "":
		return false
	case to.Host == p.ProviderHost:
		return true
	default:
		return from.Host == p.ProviderHost && to.Host == p.home
	}
}

var providerLinkRe = regexp.MustCompile(`<a class="button provider" href="([^"]+)">Sign in with ([^<]+)</a>`)

// Authorize opens an authorization URL and does what a person would: signs
// in when asked, answers the consent page with Decision, and returns the
// redirect back to the application. A page it cannot act on is an error.
func (p *Person) Authorize(authURL string) (*url.URL, error) {
	res, err := p.Get(authURL)
	if err != nil {
		return nil, err
	}
	return p.Continue(res)
}

// Device opens a device verification URI and does what a person would:
// types UserCode if asked, signs in, answers the consent page with Decision,
// and returns the last page (which tells them to return to their device).
func (p *Person) Device(verificationURI string) (*Page, error) {
	p.device = true
	res, err := p.Get(verificationURI)
	if err != nil {
		return nil, err
	}
	if _, err := p.Continue(res); err != nil {
		return nil, err
	}
	return p.Last, nil
}

// SignOut opens an application's end-session URL (OpenID Connect
// RP-Initiated Logout) and, when the server asks, confirms: the form's
// decision button with value "logout". It returns where it ended: the
// redirect back to the application, or the last page.
func (p *Person) SignOut(endSessionURL string) (*Result, error) {
	res, err := p.Get(endSessionURL)
	if err != nil || res.Page == nil || !strings.Contains(res.Page.Body, `value="logout"`) {
		return res, err
	}
	p.Pages = append(p.Pages, "sign out")
	form, err := res.Page.Form()
	if err != nil {
		return nil, err
	}
	form.Fields.Set("decision", "logout")
	return p.Post(form.Action, form.Fields)
}

// providerLink is the page's "Sign in with <name>" link, or "".
func providerLink(page *Page, name string) string {
	for _, m := range providerLinkRe.FindAllStringSubmatch(page.Body, -1) {
		if html.UnescapeString(m[2]) == name {
			if u, err := page.URL.Parse(html.UnescapeString(m[1])); err == nil {
				return u.String()
			}
		}
	}
	return ""
}

// Continue carries on from a result as Authorize does.
func (p *Person) Continue(res *Result) (*url.URL, error) {
	for range 10 {
		if res.Redirect != nil {
			return res.Redirect, nil
		}
		page := res.Page
		p.Last = page
		if p.Provider != "" && page.URL.Host != p.ProviderHost {
			if link := providerLink(page, p.Provider); link != "" {
				p.Pages = append(p.Pages, "login with "+p.Provider)
				next, err := p.Get(link)
				if err != nil {
					return nil, err
				}
				res = next
				continue
			}
		}
		if !formRe.MatchString(page.Body) && p.device {
			return nil, nil // a page with nothing to do: the device flow's end
		}
		if !formRe.MatchString(page.Body) && page.URL.Host == p.ProviderHost {
			return nil, fmt.Errorf("the provider's page has no form (status %d):\n%s", page.Status, page.Body)
		}
		form, err := page.Form()
		if err != nil {
			return nil, err
		}
		switch {
		case page.URL.Host == p.ProviderHost && page.Has("login"):
			p.Pages = append(p.Pages, "provider login")
			form.Fields.Set("login", p.ProviderLogin)
			form.Fields.Set("password", "any")
		case page.URL.Host == p.ProviderHost:
			p.Pages = append(p.Pages, "provider consent")
		case page.Has("user_code") && !page.Has("decision"):
			if len(p.Pages) > 0 && p.Pages[len(p.Pages)-1] == "device" {
				return nil, fmt.Errorf("the code was refused (status %d):\n%s", page.Status, page.Body)
			}
			p.Pages = append(p.Pages, "device")
			if p.UserCode != "" {
				form.Fields.Set("user_code", p.UserCode)
			}
		case page.Has("password"):
			if len(p.Pages) > 0 && p.Pages[len(p.Pages)-1] == "login" {
				return nil, fmt.Errorf("login failed (status %d):\n%s", page.Status, page.Body)
			}
			p.Pages = append(p.Pages, "login")
			form.Fields.Set("username", p.Username)
			form.Fields.Set("password", p.Password)
		case page.Has("decision"):
			p.Pages = append(p.Pages, "consent")
			form.Fields.Set("decision", p.Decision)
		default:
			return nil, fmt.Errorf("unexpected page (status %d):\n%s", page.Status, page.Body)
		}
		if res, err = p.Post(form.Action, form.Fields); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("the flow did not end")
}
