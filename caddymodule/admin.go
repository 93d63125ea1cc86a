package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves tokengate's administration on Caddy's admin endpoint:
// client registration, revocation and key rotation (README: Admin API). The
// routes themselves are the authorization server's.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.oauth2", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/oauth2/", Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

// serveAdmin hands the request to the running config's oauth2 app.
func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	v, err := caddy.ActiveContext().AppIfConfigured("oauth2")
	if err != nil || v == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the running config has no oauth2 app")}
	}
	v.(*App).admin.ServeHTTP(w, r)
	return nil
}
