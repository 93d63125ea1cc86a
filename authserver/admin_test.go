package authserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/authserver/store"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
)

// Registered client IDs are safe to type: hex, so never a leading dash
// that `tokengate oauth2 client show ID` would read as a flag.
func TestRegisteredClientIDs(t *testing.T) {
	e := newEnv(t)
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for range 200 {
		ci, err := e.srv.Admin().RegisterClient(t.Context(), &client.Info{Name: "App", GrantTypes: []string{"client_credentials"}, Scope: "read"})
		if err != nil {
			t.Fatal(err)
		}
		if !hexID.MatchString(ci.ID) || len(ci.Secret) < 40 {
			t.Fatalf("client_id %q, secret length %d", ci.ID, len(ci.Secret))
		}
	}
}

// Administration errors keep their cause for the log and tell the
// administrator what they can act on: a store that fails under the admin
// API is 503 with the cause logged, and the cause never reaches the
// answer.
func TestAdminErrors(t *testing.T) {
	// How each error maps to a status is admin's TestError; here, a store
	// failure through the whole server.
	cause := errors.New("dial tcp 10.0.0.9:6379: connection refused")
	core, logs := observer.New(zap.ErrorLevel)
	st := &unreachableClients{Store: openStore(t)}
	e := newEnvWith(t, st, "ES256", func(c *authserver.Config) { c.Logger = zap.New(core) })
	h := e.srv.AdminHandler()
	st.err = cause // the store goes away under the admin API
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/clients", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "the store is unavailable while listing clients") {
		t.Fatalf("the admin API with the store gone: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "10.0.0.9") {
		t.Fatalf("the answer shows the cause: %s", w.Body)
	}
	if logs.FilterMessageSnippet("admin API: the store is unavailable").FilterFieldKey("error").Len() != 1 {
		t.Fatalf("the store's failure is not logged with its cause: %v", logs.All())
	}
	// The OAuth error of a store failure carries its cause for the log.
	if e := authserver.StoreError(e.srv, "testing", cause); !errors.Is(e, cause) || strings.Contains(e.Description, "10.0.0.9") {
		t.Fatalf("a store failure's OAuth error: %+v", e)
	}
}

// unreachableClients is a store whose clients cannot be listed once err
// is set.
type unreachableClients struct {
	store.Store
	err error
}

func (u *unreachableClients) Clients(ctx context.Context) ([]*store.Client, error) {
	if u.err != nil {
		return nil, u.err
	}
	return u.Store.Clients(ctx)
}

// The admin API registers a client from the same shape it shows one in;
// what the server sets (the ID, the secret, the source, the time) cannot
// be sent.
func TestAdminRegistrationRefusesServerFields(t *testing.T) {
	e := newEnv(t)
	h := e.srv.AdminHandler()
	for _, body := range []string{
		`{"name":"App","grant_types":["client_credentials"],"scope":"read","client_id":"mine"}`,
		`{"name":"App","grant_types":["client_credentials"],"scope":"read","client_secret":"chosen"}`,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/oauth2/clients", strings.NewReader(body)))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "the server's to set") {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/oauth2/clients", strings.NewReader(`{"name":"App","grant_types":["client_credentials"],"scope":"read"}`)))
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"client_secret"`) {
		t.Fatalf("a registration: %d %s", w.Code, w.Body)
	}
}

// The admin API reads "scopes", the list its earlier releases took for
// "scope", as the README promises; a field it does not take is named as
// such, not called bad JSON.
func TestAdminRegistrationReadsScopes(t *testing.T) {
	e := newEnv(t)
	h := e.srv.AdminHandler()
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/oauth2/clients", strings.NewReader(body)))
		return w
	}
	w := post(`{"name":"Old","grant_types":["client_credentials"],"scopes":["read","write"]}`)
	if w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"scope": "read write"`) {
		t.Fatalf(`"scopes": %d %s`, w.Code, w.Body)
	}
	if w := post(`{"name":"Both","grant_types":["client_credentials"],"scope":"read","scopes":["read"]}`); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), "not both") {
		t.Fatalf(`"scope" and "scopes": %d %s`, w.Code, w.Body)
	}
	if w := post(`{"name":"Typo","grant_types":["client_credentials"],"scop":"read"}`); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), `a field this endpoint does not take: \"scop\"`) || strings.Contains(w.Body.String(), "must be JSON") {
		t.Fatalf("an unknown field: %d %s", w.Code, w.Body)
	}
}
