package caddymodule

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/console"
)

// The console's recent events and the counts behind its charts belong to
// the process, so that a reload keeps them, and so does the client secret
// checker (its verified secrets, its failure counts, its bound on bcrypt's
// CPU): the configs a reload overlaps share them through a pool, as they
// share a store, and the last config to go lets them go.
var activity = caddy.NewUsagePool()

const activityKey = "oauth2.activity"

// recent is what the pool holds: the audit events, the charts' counts
// and the secret checker.
type recent struct {
	audit   *authserver.AuditRing
	history *console.History
	secrets *client.Secrets
}

func (*recent) Destruct() error { return nil }

// newRecent is a process's recent activity before any.
func newRecent() *recent {
	return &recent{audit: authserver.NewAuditRing(500), history: new(console.History), secrets: client.NewSecrets()}
}

// loadActivity takes (or starts) the process's recent activity for a's
// config; a.Cleanup gives it back.
func (a *App) loadActivity() {
	v, _, _ := activity.LoadOrNew(activityKey, func() (caddy.Destructor, error) { return newRecent(), nil })
	a.recent = v.(*recent)
}

// Cleanup gives back the config's use of the recent activity.
func (a *App) Cleanup() error {
	if !a.started && a.server != nil {
		// Provisioned but never started: tokengate validate (or a load
		// that failed elsewhere). The routes are complete only now, so
		// what run would refuse is told here.
		if err := a.checkConsoles(); err != nil {
			a.logger.Error("tokengate run would refuse this config: " + err.Error())
		}
	}
	if a.recent == nil {
		return nil
	}
	_, err := activity.Delete(activityKey)
	return err
}

// Console serves tokengate's admin console (clients, grants, audit events,
// charts of the last hour) wherever its route puts it: the last segment of
// the path names the page, so that `handle /console/*` needs no prefix
// setting. It authenticates nobody: put an authentication handler (such as
// basic_auth) before it in its route. Without one, the config does not
// load, unless InsecureNoAuth says something in front of Caddy does.
type Console struct {
	// InsecureNoAuth lets the console load without an authentication
	// handler before it in its route: only for a console that something
	// outside Caddy (a VPN, an authenticating proxy in front) guards.
	InsecureNoAuth bool `json:"insecure_no_auth,omitempty"`

	app     *App
	console *console.Console
}

// CaddyModule returns the Caddy module information.
func (Console) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.oauth2_console", New: func() caddy.Module { return new(Console) }}
}

// Provision finds the oauth2 app and asks it to check, once every route
// is provisioned, that an authentication handler guards the console.
func (c *Console) Provision(ctx caddy.Context) (err error) {
	if c.app, err = oauth2App(ctx); err != nil {
		return err
	}
	c.console, err = console.New(console.Config{Admin: c.app.server.Admin(), Audit: c.app.recent.audit, History: c.app.recent.history, User: upstreamUser,
		Logger: ctx.Logger()})
	if err != nil {
		return err
	}
	c.app.addConsole(c)
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	c.console.ServeHTTP(w, r)
	return nil
}

// addConsole registers a console of the config to be checked at start
// (Caddy provisions one config's modules one at a time).
func (a *App) addConsole(c *Console) { a.consoles = append(a.consoles, c) }

// checkConsoles refuses a config whose console is not behind an
// authentication handler (Console). Handlers see nothing of the route
// around them while they are provisioned, so the check runs at start,
// when the HTTP app's routes are complete: `tokengate validate` does not
// make it, `run` and `reload` do.
func (a *App) checkConsoles() error {
	list := a.consoles
	if len(list) == 0 {
		return nil
	}
	servers := a.httpServers()
	for _, c := range list {
		if c.InsecureNoAuth {
			a.logger.Warn("oauth2_console has insecure_no_auth: whoever reaches its route administers clients and grants")
			continue
		}
		guarded, found := false, false
		for _, srv := range servers {
			if f, g := guardedIn(srv.Routes, c, false); f {
				found, guarded = true, g
				break
			}
		}
		if !found || !guarded {
			return fmt.Errorf("oauth2_console is not behind an authentication handler: anyone who reaches it could register clients and revoke grants; " +
				"put basic_auth (or forward_auth, or another authentication handler) before it in the same route, e.g. " +
				"handle /console/* { basic_auth { admin <bcrypt hash> } oauth2_console }; " +
				"set insecure_no_auth in oauth2_console only if something in front of Caddy authenticates")
		}
	}
	return nil
}

// guardedIn finds target in routes (and their subroutes) and says whether
// an authentication handler runs before it: before the subroute it is in
// (above), in an earlier route of the same list that runs for every
// request the target's route matches (no matchers, or the same ones), or
// earlier in its own route.
func guardedIn(routes caddyhttp.RouteList, target *Console, above bool) (found, guarded bool) {
	for i, rt := range routes {
		if !holds(routes[i:i+1], target) {
			continue
		}
		guarded := above
		for _, earlier := range routes[:i] {
			if slices.ContainsFunc(earlier.Handlers, authenticates) &&
				(len(earlier.MatcherSets) == 0 || reflect.DeepEqual(earlier.MatcherSets, rt.MatcherSets)) {
				guarded = true
			}
		}
		for _, h := range rt.Handlers {
			if h == target {
				return true, guarded
			}
			if sub, ok := h.(*caddyhttp.Subroute); ok && holds(sub.Routes, target) {
				return guardedIn(sub.Routes, target, guarded)
			}
			if authenticates(h) {
				guarded = true
			}
		}
	}
	return false, false
}

// holds says whether target is among the routes' handlers or, nested,
// their subroutes'.
func holds(routes caddyhttp.RouteList, target *Console) bool {
	for _, rt := range routes {
		for _, h := range rt.Handlers {
			if sub, ok := h.(*caddyhttp.Subroute); h == target || ok && holds(sub.Routes, target) {
				return true
			}
		}
	}
	return false
}

// authenticates says whether a handler lets only authenticated requests
// through: Caddy's authentication handler (basic_auth and the other
// http.authentication providers), forward_auth (a reverse proxy that
// decides by its upstream's answer), and bearer_auth.
func authenticates(h caddyhttp.MiddlewareHandler) bool {
	switch h := h.(type) {
	case *caddyauth.Authentication, *BearerAuth:
		return true
	case *reverseproxy.Handler:
		return len(h.HandleResponse) > 0
	}
	return false
}

var (
	_ caddy.Provisioner           = (*Console)(nil)
	_ caddyhttp.MiddlewareHandler = (*Console)(nil)
)

// parseConsole reads `oauth2_console [{ insecure_no_auth }]`.
func parseConsole(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	c := new(Console)
	return c, c.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads the oauth2_console directive:
//
//	oauth2_console {
//		insecure_no_auth
//	}
func (c *Console) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "oauth2_console"
	if d.NextArg() {
		return d.Errf("oauth2_console takes no arguments: put it in a route (handle /console/* { … }) behind an authentication handler")
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "insecure_no_auth":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.InsecureNoAuth = true
		default:
			return d.Errf("oauth2_console: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Console)(nil)
