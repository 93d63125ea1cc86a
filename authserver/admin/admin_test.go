package admin_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver/admin"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// Each administration error gets the status an administrator can act on,
// and a message without its cause: 400 names the field, 404 an unknown
// client or grant, 409 a configured client, a Failure its own status, and
// an error nobody named 500, never "the store is unavailable".
func TestError(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.9:6379: connection refused")
	for _, tc := range []struct {
		err    error
		status int
		says   string
	}{
		{errors.New("something nobody named"), http.StatusInternalServerError, "the server failed"},
		{fmt.Errorf("reading: %w", store.ErrNotFound), http.StatusNotFound, "no such client"},
		{admin.ErrNoGrant, http.StatusNotFound, "no such grant"},
		{admin.ErrConfigClient, http.StatusConflict, "change it there"},
		{oauth.ErrInvalidRequest("name is required"), http.StatusBadRequest, "name is required"},
		{&admin.Failure{Status: http.StatusServiceUnavailable, Message: "the store is unavailable while listing clients", Err: cause},
			http.StatusServiceUnavailable, "the store is unavailable while listing clients"},
	} {
		status, msg := admin.Error(tc.err)
		if status != tc.status || !strings.Contains(msg, tc.says) || strings.Contains(msg, "10.0.0.9") {
			t.Errorf("%v: %d %q, want %d saying %q", tc.err, status, msg, tc.status, tc.says)
		}
		if status != http.StatusServiceUnavailable && strings.Contains(msg, "store") {
			t.Errorf("%v: %q blames the store", tc.err, msg)
		}
	}
	if f := (&admin.Failure{Status: 503, Message: "m", Err: cause}); !errors.Is(f, cause) {
		t.Error("a Failure does not keep its cause")
	}
}
