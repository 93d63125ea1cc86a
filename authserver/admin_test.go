package authserver_test

import (
	"regexp"
	"testing"

	"github.com/tokengate/tokengate/authserver"
)

// Registered client IDs are safe to type: hex, so never a leading dash
// that `tokengate oauth2 client show ID` would read as a flag.
func TestRegisteredClientIDs(t *testing.T) {
	e := newEnv(t)
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for range 200 {
		ci, err := e.srv.RegisterClient(t.Context(), &authserver.Registration{Name: "App", GrantTypes: []string{"client_credentials"}, Scope: "read"})
		if err != nil {
			t.Fatal(err)
		}
		if !hexID.MatchString(ci.ID) || len(ci.Secret) < 40 {
			t.Fatalf("client_id %q, secret length %d", ci.ID, len(ci.Secret))
		}
	}
}
