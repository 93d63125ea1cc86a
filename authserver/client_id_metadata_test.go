package authserver_test

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/outbound"
)

// A client_id that is an https URL names the client's metadata document:
// fetched (through the guarded client), checked, cached.
func TestClientIDMetadataDocument(t *testing.T) {
	var fetches atomic.Int64
	var docs *httptest.Server
	docs = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		self := docs.URL + r.URL.Path
		switch r.URL.Path {
		case "/client.json":
			w.Header().Set("Cache-Control", "max-age=600")
			fmt.Fprintf(w, `{"client_id":%q,"client_name":"Doc Agent","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`, self)
		case "/other.json":
			fmt.Fprint(w, `{"client_id":"https://somebody.else/client.json","redirect_uris":["http://127.0.0.1/cb"]}`)
		case "/moved.json":
			http.Redirect(w, r, "/client.json", http.StatusFound)
		case "/big.json":
			fmt.Fprintf(w, `{"client_id":%q,"client_name":%q,"redirect_uris":["http://127.0.0.1/cb"]}`, self, strings.Repeat("x", 6<<10))
		case "/slow.json":
			time.Sleep(time.Second)
			fmt.Fprintf(w, `{"client_id":%q,"redirect_uris":["http://127.0.0.1/cb"]}`, self)
		}
	}))
	defer docs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(docs.Certificate())
	fetch := outbound.New(outbound.Options{RootCAs: pool, AllowPrivateHosts: []string{"127.0.0.1"}, Timeout: 300 * time.Millisecond})
	e := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, ClientIDMetadataDocuments: true, Fetcher: fetch})

	id := docs.URL + "/client.json"
	auth := func(clientID string) string {
		return e.authURL("response_type", "code", "client_id", clientID, "redirect_uri", "http://127.0.0.1:4242/cb", "scope", "read",
			"state", "s", "code_challenge", challenge(verifier), "code_challenge_method", "S256")
	}
	code := e.codeFor(t, e.person(), auth(id))
	resp := e.post("/oauth/token", form("grant_type", "authorization_code", "code", code, "client_id", id,
		"redirect_uri", "http://127.0.0.1:4242/cb", "code_verifier", verifier), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("exchange as the document's client: %d %v", resp.StatusCode, decode(t, resp))
	}
	e.codeFor(t, e.person(), auth(id))
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the document was fetched %d times; its max-age lets it be cached", n)
	}
	for path, want := range map[string]string{"/other.json": "is not its own URL", "/moved.json": "redirects are not followed",
		"/big.json": "larger than 5120 bytes", "/slow.json": "Timeout"} {
		res, err := e.person().Get(auth(docs.URL + path))
		if err != nil {
			t.Fatal(err)
		}
		if res.Page == nil || !strings.Contains(res.Page.Body, want) {
			t.Errorf("%s: the error page does not say %q", path, want)
		}
	}
	// At the token endpoint a document that cannot be used is invalid_client.
	resp = e.post("/oauth/token", form("grant_type", "authorization_code", "code", "x", "client_id", docs.URL+"/big.json",
		"redirect_uri", "http://127.0.0.1/cb", "code_verifier", verifier), nil)
	if m := decode(t, resp); resp.StatusCode != 401 || m["error"] != "invalid_client" {
		t.Fatalf("token request as an oversized document's client: %d %v", resp.StatusCode, m)
	}
	md := decode(t, e.do(mustReq(t, "GET", e.http.URL+"/.well-known/oauth-authorization-server")))
	if md["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata %v", md)
	}
	// Without the operator's allowance, a document on a private address is
	// never fetched.
	strict := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, ClientIDMetadataDocuments: true,
		Fetcher: outbound.New(outbound.Options{RootCAs: pool})})
	before := fetches.Load()
	res, err := strict.person().Get(strict.authURL("response_type", "code", "client_id", id, "redirect_uri", "http://127.0.0.1:4242/cb",
		"state", "s", "code_challenge", challenge(verifier), "code_challenge_method", "S256"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Page == nil || !strings.Contains(res.Page.Body, "private") || fetches.Load() != before {
		t.Fatalf("a private document was fetched: %d fetches", fetches.Load()-before)
	}
}
