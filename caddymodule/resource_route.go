package caddymodule

// RFC 9728 §3: a protected resource's metadata is at
// /.well-known/oauth-protected-resource{path}, and bearer_auth serves it
// when requests for that path reach it. A layout that puts bearer_auth
// under a route matching only the API's own paths (handle /a/*) never
// routes the document's path there, and clients that follow the 401's
// resource_metadata get a 404: a start-up warning names the route and the
// fix.

import (
	"crypto/tls"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// addResourceRoute registers a bearer_auth with a resource, to be checked
// at start, once the HTTP app's routes are complete.
func (a *App) addResourceRoute(b *BearerAuth) { a.resourceRoutes = append(a.resourceRoutes, b) }

// checkResourceRoutes warns of each bearer_auth whose metadata document's
// path does not reach it in any server.
func (a *App) checkResourceRoutes() {
	if len(a.resourceRoutes) == 0 {
		return
	}
	servers := a.httpServers()
	for _, b := range a.resourceRoutes {
		reached := false
		for _, srv := range servers {
			if reaches(srv, b.resource.MetadataURL(), func(h caddyhttp.MiddlewareHandler) bool { return h == caddyhttp.MiddlewareHandler(b) }) {
				reached = true
				break
			}
		}
		if !reached {
			path := b.resource.MetadataPath()
			a.logger.Warn("bearer_auth with resource "+b.Resource+": requests for its metadata document ("+path+") do not reach it, "+
				"so clients following the 401's resource_metadata get nothing; it sits under a route matching other paths (such as handle /a/*): "+
				"match the document's path too, e.g. @api path /a/* "+path+" and handle @api { bearer_auth … }",
				zap.String("resource", b.Resource), zap.String("metadata_path", path))
		}
	}
}

// httpServers are the HTTP app's servers, complete once every app is
// provisioned; none in a config without an HTTP app (asking Caddy for
// one would make an empty one).
func (a *App) httpServers() map[string]*caddyhttp.Server {
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil || v == nil {
		return nil
	}
	return v.(*caddyhttp.App).Servers
}

// reaches says whether a GET of target would run through srv's routes to a
// handler that is: the routes whose matchers match it, in order, into
// their subroutes, until a terminal one.
func reaches(srv *caddyhttp.Server, target string, is func(caddyhttp.MiddlewareHandler) bool) bool {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return false
	}
	req.RequestURI = req.URL.RequestURI()
	if req.URL.Scheme == "https" {
		req.TLS = &tls.ConnectionState{ServerName: req.URL.Hostname()}
	}
	req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), nil, srv)
	return reachedIn(srv.Routes, req, is, map[string]bool{})
}

func reachedIn(routes caddyhttp.RouteList, req *http.Request, is func(caddyhttp.MiddlewareHandler) bool, groups map[string]bool) bool {
	for _, rt := range routes {
		if rt.Group != "" && groups[rt.Group] {
			continue
		}
		if ok, err := rt.MatcherSets.AnyMatchWithError(req); err != nil || !ok {
			continue
		}
		if rt.Group != "" {
			groups[rt.Group] = true
		}
		for _, h := range rt.Handlers {
			if is(h) {
				return true
			}
			if sub, ok := h.(*caddyhttp.Subroute); ok && reachedIn(sub.Routes, req, is, groups) {
				return true
			}
		}
		if rt.Terminal {
			return false
		}
	}
	return false
}
