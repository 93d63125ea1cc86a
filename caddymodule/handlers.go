package caddymodule

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/tokengate/authserver"
)

func init() {
	caddy.RegisterModule(Server{})
	caddy.RegisterModule(BearerAuth{})
	httpcaddyfile.RegisterHandlerDirective("oauth2_server", parseServer)
	httpcaddyfile.RegisterHandlerDirective("bearer_auth", parseBearerAuth)
	caddy.RegisterModule(Console{})
	httpcaddyfile.RegisterHandlerDirective("oauth2_console", parseConsole)
	// After forward_auth, so an upstream login handler authenticates the
	// user first; bearer_auth sits with the other auth handlers. Each
	// goes right after forward_auth, so the console, registered first,
	// ends up after oauth2_server: behind every authentication handler.
	httpcaddyfile.RegisterDirectiveOrder("oauth2_console", httpcaddyfile.After, "forward_auth")
	httpcaddyfile.RegisterDirectiveOrder("oauth2_server", httpcaddyfile.After, "forward_auth")
	httpcaddyfile.RegisterDirectiveOrder("bearer_auth", httpcaddyfile.After, "basic_auth")
}

// oauth2App is the app the handlers serve. When it failed to start, its
// own error says why (the app logged it first): the handlers add nothing
// that would bury it.
func oauth2App(ctx caddy.Context) (*App, error) {
	v, err := ctx.AppIfConfigured("oauth2")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, errors.New("the oauth2 app is needed: add an `oauth2 { issuer ... }` global option")
	}
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

// Server serves the oauth2 app's authorization server endpoints (token,
// JWKS, metadata, ...) below the issuer's path and passes every other
// request to the next handler.
type Server struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (Server) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.oauth2_server", New: func() caddy.Module { return new(Server) }}
}

// Provision finds the oauth2 app.
func (s *Server) Provision(ctx caddy.Context) (err error) {
	s.app, err = oauth2App(ctx)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h := s.app.server.Handler(r.URL.Path); h != nil {
		start := time.Now()
		h.ServeHTTP(w, r)
		// The path is one of the server's routes, a small fixed set, but
		// for RFC 7592's one URL per registered client.
		label := r.URL.Path
		if i := strings.Index(label, authserver.PathRegister+"/"); i >= 0 {
			label = label[:i+len(authserver.PathRegister)] + "/{client_id}"
		}
		endpointDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
		return nil
	}
	return next.ServeHTTP(w, r)
}

var (
	_ caddyhttp.MiddlewareHandler = (*Server)(nil)
	_ caddy.Provisioner           = (*Server)(nil)
)

// parseServer reads oauth2_server, which takes no arguments (the oauth2
// global option configures it):
//
//	oauth2_server
func parseServer(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	if h.NextArg() || h.NextBlock(0) {
		return nil, h.Errf("oauth2_server takes no arguments; configure it in the oauth2 global option")
	}
	return new(Server), nil
}
