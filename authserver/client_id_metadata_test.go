package authserver_test

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/outbound"
)

// fetchFailed is what the person reads when a document cannot be fetched.
const fetchFailed = "could not fetch the application&#39;s description"

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
	// What is wrong with a document is the client's to hear; why it could
	// not be fetched is not (it would map the network behind the URL).
	for path, want := range map[string]string{"/other.json": "is not its own URL", "/moved.json": fetchFailed,
		"/big.json": fetchFailed, "/slow.json": fetchFailed} {
		res, err := e.person().Get(auth(docs.URL + path))
		if err != nil {
			t.Fatal(err)
		}
		if res.Page == nil || !strings.Contains(res.Page.Body, want) {
			t.Errorf("%s: the error page does not say %q", path, want)
		}
		for _, detail := range []string{"redirect", "5120", "Timeout", "deadline"} {
			if strings.Contains(res.Page.Body, detail) {
				t.Errorf("%s: the error page shows the fetch's detail %q", path, detail)
			}
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
	if res.Page == nil || !strings.Contains(res.Page.Body, fetchFailed) || strings.Contains(res.Page.Body, "private") || fetches.Load() != before {
		t.Fatalf("a private document was fetched: %d fetches", fetches.Load()-before)
	}
}

// docServer serves metadata documents (path → document, with %q for the
// document's own URL; "*" for any path, /missing.json excepted) on an https server the
// returned fetcher trusts, counting fetches per path.
func docServer(t *testing.T, delay time.Duration, docs map[string]string) (*httptest.Server, *outbound.Client, func(path string) int64) {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int64{}
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		time.Sleep(delay)
		doc, ok := docs[r.URL.Path]
		if !ok && r.URL.Path != "/missing.json" {
			doc, ok = docs["*"]
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, doc, srv.URL+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	fetch := outbound.New(outbound.Options{RootCAs: pool, AllowPrivateHosts: []string{"127.0.0.1"}})
	return srv, fetch, func(path string) int64 {
		mu.Lock()
		defer mu.Unlock()
		return counts[path]
	}
}

const agentDoc = `{"client_id":%q,"client_name":"Doc Agent","redirect_uris":["http://127.0.0.1/cb"]}`

// The fetcher amplifies nothing: requests waiting for one document share
// its fetch, a failure is remembered a minute, and one address has a
// budget of fetches that leaves other addresses theirs.
func TestClientIDMetadataDocumentFetcher(t *testing.T) {
	docs, fetch, count := docServer(t, 200*time.Millisecond, map[string]string{"*": agentDoc})
	core, logs := observer.New(zap.InfoLevel)
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.Registration = &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, ClientIDMetadataDocuments: true, Fetcher: fetch}
		c.Logger = zap.New(core)
	})
	authorize := func(clientID, ip string) (int, string) {
		req := mustReq(t, "GET", e.authURL("response_type", "code", "client_id", clientID, "redirect_uri", "http://127.0.0.1/cb",
			"code_challenge", challenge(verifier), "code_challenge_method", "S256"))
		req.Header.Set("X-Test-Client-IP", ip)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusSeeOther {
			return http.StatusFound, string(body) // on to the sign-in page: the document was fine
		}
		return resp.StatusCode, string(body)
	}

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if st, body := authorize(docs.URL+"/agent.json", "192.0.2.10"); st != http.StatusFound {
				t.Errorf("a request for a document being fetched: %d %s", st, body)
			}
		})
	}
	wg.Wait()
	if n := count("/agent.json"); n != 1 {
		t.Fatalf("20 concurrent requests made %d fetches, want 1", n)
	}

	for range 30 {
		if st, body := authorize(docs.URL+"/missing.json", "192.0.2.11"); st != http.StatusBadRequest || !strings.Contains(body, fetchFailed) {
			t.Fatalf("a missing document: %d %s", st, body)
		}
	}
	if n := count("/missing.json"); n != 1 {
		t.Fatalf("30 requests for a missing document made %d fetches, want 1 (a failure is remembered)", n)
	}
	if logs.FilterMessageSnippet("could not be fetched").FilterField(zap.String("client_id", docs.URL+"/missing.json")).Len() != 1 {
		t.Fatalf("the fetch's failure is not in the log: %v", logs.All())
	}

	// One address: its budget, then refusals without a fetch.
	for i := range 12 {
		path := fmt.Sprintf("/budget-%d.json", i)
		st, body := authorize(docs.URL+path, "198.51.100.7")
		if i < 10 && st != http.StatusFound {
			t.Fatalf("fetch %d of an address's budget: %d %s", i+1, st, body)
		}
		if i >= 10 && (st != http.StatusBadRequest || !strings.Contains(body, "too many") || count(path) != 0) {
			t.Fatalf("fetch %d, past the budget: %d (fetched %d times) %s", i+1, st, count(path), body)
		}
	}
	if st, _ := authorize(docs.URL+"/budget-11.json", "198.51.100.8"); st != http.StatusFound {
		t.Fatalf("another address, for the document the first could not have fetched: %d", st)
	}

	// A connection refused reads as any other failure to fetch: the page
	// is no port scanner.
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closed.Close()
	if st, body := authorize(closed.URL+"/client.json", "192.0.2.12"); st != http.StatusBadRequest || !strings.Contains(body, fetchFailed) ||
		strings.Contains(body, "refused") || strings.Contains(body, "dial") {
		t.Fatalf("a closed port: %d %s", st, body)
	}
}

// A metadata document is only who its host is: the page names the host,
// shows the name as the document's claim, and its website only when it is
// https on that host; a client_uri that is no website is refused.
func TestClientIDMetadataDocumentIdentity(t *testing.T) {
	docs, fetch, _ := docServer(t, 0, map[string]string{
		"/imp.json":    `{"client_id":%q,"client_name":"GitHub","client_uri":"https://github.com","redirect_uris":["http://127.0.0.1/cb"]}`,
		"/js.json":     `{"client_id":%q,"client_name":"Evil","client_uri":"javascript:alert(1)","redirect_uris":["http://127.0.0.1/cb"]}`,
		"/honest.json": `{"client_id":%q,"client_name":"Honest","client_uri":"https://127.0.0.1/about","redirect_uris":["http://127.0.0.1/cb"]}`,
		"/long.json":   `{"client_id":%q,"client_name":"` + strings.Repeat("G", 300) + `","redirect_uris":["http://127.0.0.1/cb"]}`,
	})
	e := newRegistrationEnv(t, openStore(t), &authserver.RegistrationConfig{Open: true, Scopes: []string{"read"}, ClientIDMetadataDocuments: true, Fetcher: fetch})
	page := func(path string) string {
		t.Helper()
		res, err := e.person().Get(e.authURL("response_type", "code", "client_id", docs.URL+path, "redirect_uri", "http://127.0.0.1/cb",
			"code_challenge", challenge(verifier), "code_challenge_method", "S256"))
		if err != nil || res.Page == nil {
			t.Fatalf("%s: %v %+v", path, err, res)
		}
		return res.Page.Body
	}
	host := strings.TrimPrefix(docs.URL, "https://")
	imp := page("/imp.json")
	if !strings.Contains(imp, "<h2>"+host+"</h2>") || !strings.Contains(imp, "calls itself “GitHub”") || strings.Contains(imp, "https://github.com") ||
		strings.Contains(imp, "<h2>GitHub</h2>") {
		t.Fatalf("a document calling itself GitHub:\n%s", imp)
	}
	if honest := page("/honest.json"); !strings.Contains(honest, "https://127.0.0.1/about") {
		t.Fatalf("a website on the document's own host is not shown:\n%s", honest)
	}
	// A document meets registration's caps.
	if long := page("/long.json"); !strings.Contains(long, "client_name has 300 characters: at most 200") {
		t.Fatalf("a 300 character name:\n%s", long)
	}
	if js := page("/js.json"); !strings.Contains(js, "cannot be used: client_uri:") {
		t.Fatalf("a javascript: client_uri:\n%s", js)
	}
}
