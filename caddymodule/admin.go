package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves tokengate's routes on Caddy's admin endpoint.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.oauth2", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes implements caddy.AdminRouter.
func (a AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/oauth2/keys/rotate", Handler: caddy.AdminHandlerFunc(a.rotateKeys)},
	}
}

// runningApp is the oauth2 app of the running config.
func runningApp() (*App, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("oauth2")
	if err != nil || v == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the running config has no oauth2 app")}
	}
	return v.(*App), nil
}

// rotateKeys: POST /oauth2/keys/rotate [{"delay":"1h"}] adds a new signing
// key, which signs after delay (default: at once); the old key stays
// published until its tokens expire.
func (AdminAPI) rotateKeys(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("use POST")}
	}
	app, err := runningApp()
	if err != nil {
		return err
	}
	var body struct {
		Delay caddy.Duration `json:"delay"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("body must be JSON like {\"delay\":\"1h\"}: %v", err)}
	}
	if body.Delay < 0 {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("delay must not be negative")}
	}
	if err := app.keys.Rotate(r.Context(), time.Duration(body.Delay)); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	kids := app.keys.KeyIDs()
	app.logger.Info("signing keys rotated", zap.String("new_kid", kids[0]), zap.Duration("delay", time.Duration(body.Delay)))
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"kid": kids[0], "published": kids})
}
