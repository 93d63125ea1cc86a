package caddymodule

// The site that serves the issuer. The oauth2 app issues nothing unless a
// route hands the issuer's requests to oauth2_server, and Caddy starts
// without one (every endpoint is then a bare 404): the start says which it
// is, with a line naming the issuer, its endpoints and its store, or a
// warning naming the fix.

import (
	"net/url"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver"
)

// announce logs what this config serves, and warns when servers, the
// ones whose routes serve the issuer (issuerServers), are none.
func (a *App) announce(servers []*caddyhttp.Server) {
	md := a.server.Metadata()
	if len(servers) == 0 {
		host := md.Issuer
		if u, err := url.Parse(md.Issuer); err == nil {
			host = u.Scheme + "://" + u.Host
		}
		a.logger.Warn("no route serves the issuer "+md.Issuer+": its endpoints answer 404 and no token can be issued; "+
			"add oauth2_server to the site block of "+host,
			zap.String("issuer", md.Issuer))
	}
	a.logger.Info("serving issuer "+md.Issuer,
		zap.String("issuer", md.Issuer),
		zap.String("token_endpoint", md.TokenEndpoint),
		zap.String("authorization_endpoint", md.AuthorizationEndpoint),
		zap.String("jwks_uri", md.JWKSURI),
		zap.String("store", a.storeName),
		zap.Int("clients", len(a.Clients)))
}

// issuerServers are the servers in which a GET of the issuer's metadata
// document runs through the routes to an oauth2_server handler.
func (a *App) issuerServers() []*caddyhttp.Server {
	target := a.server.Metadata().Issuer + authserver.PathMetadata
	var out []*caddyhttp.Server
	for _, srv := range a.httpServers() {
		if reaches(srv, target, func(h caddyhttp.MiddlewareHandler) bool { _, ok := h.(*Server); return ok }) {
			out = append(out, srv)
		}
	}
	return out
}
