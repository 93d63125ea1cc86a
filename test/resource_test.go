package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
)

// An API made an RFC 9728 protected resource with one bearer_auth block.
const resourceCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client agent {
			secret agent-secret
			grant client_credentials
			scope mcp read
			audience http://127.0.0.1:{{.API}}/mcp
		}
		resource https://other.example.com/api mcp
		client elsewhere {
			secret elsewhere-secret
			grant client_credentials
			scope mcp
			audience https://other.example.com
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		resource http://127.0.0.1:{{.API}}/mcp
		resource_name "Droplet MCP"
		scope mcp
	}
	reverse_proxy {{.Upstream}}
}
`

func TestProtectedResourceMetadata(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(resourceCaddyfile)
	resource := g.APIURL() + "/mcp"
	metaURL := g.APIURL() + "/.well-known/oauth-protected-resource/mcp"

	// A client with no token learns where to go from the challenge.
	resp, _ := get(t, http.DefaultClient, "GET", resource)
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.Contains(challenge, `resource_metadata="`+metaURL+`"`) || !strings.Contains(challenge, `scope="mcp"`) {
		t.Fatalf("401 %d, challenge %q", resp.StatusCode, challenge)
	}
	// The document, without a token.
	resp, body := get(t, http.DefaultClient, "GET", metaURL)
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		Scopes               []string `json:"scopes_supported"`
		Bearer               []string `json:"bearer_methods_supported"`
		Name                 string   `json:"resource_name"`
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("metadata: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if doc.Resource != resource || len(doc.AuthorizationServers) != 1 || doc.AuthorizationServers[0] != g.AuthURL() ||
		strings.Join(doc.Scopes, " ") != "mcp" || strings.Join(doc.Bearer, " ") != "header" || doc.Name != "Droplet MCP" {
		t.Fatalf("metadata %+v", doc)
	}
	if n := len(up.seen()); n != 0 {
		t.Fatalf("the upstream saw %d requests before any token", n)
	}
	if strings.Contains(g.log.String(), "do not reach it") {
		t.Fatalf("a warning about a document that is reached:\n%s", g.log)
	}
	// A token for the resource passes; one for another audience does not.
	tok, err := ccConfig(g, "agent", "agent-secret", oauth2.AuthStyleInHeader, "mcp").Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := callAPIAt(t, resource, tok.AccessToken); st != 200 {
		t.Fatalf("a token for the resource: %d", st)
	}
	other, err := ccConfig(g, "elsewhere", "elsewhere-secret", oauth2.AuthStyleInHeader, "mcp").Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := callAPIAt(t, resource, other.AccessToken); st != 401 {
		t.Fatalf("a token for another audience: %d", st)
	}
	// RFC 8707: a client names the resource and gets a token for exactly
	// it, whatever its own audience; bearer_auth told the issuer of it.
	named := ccConfig(g, "elsewhere", "elsewhere-secret", oauth2.AuthStyleInHeader, "mcp")
	named.EndpointParams = url.Values{"resource": {resource}}
	tok2, err := named.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := callAPIAt(t, resource, tok2.AccessToken); st != 200 {
		t.Fatalf("a token asked for the resource: %d", st)
	}
	// A resource of another process, listed in the oauth2 block, is known;
	// one nobody declared is not.
	named.EndpointParams = url.Values{"resource": {"https://other.example.com/api"}}
	if _, err := named.Token(context.Background()); err != nil {
		t.Fatalf("a listed resource: %v", err)
	}
	named.EndpointParams = url.Values{"resource": {"https://nobody.example.com/"}}
	_, err = named.Token(context.Background())
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_target" {
		t.Fatalf("an unknown resource: %v", err)
	}
	// 403 points at the metadata too.
	weak, err := ccConfig(g, "agent", "agent-secret", oauth2.AuthStyleInHeader, "read").Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = get(t, http.DefaultClient, "GET", resource, "Authorization", "Bearer "+weak.AccessToken)
	if h := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 403 || !strings.Contains(h, `resource_metadata="`+metaURL+`"`) {
		t.Fatalf("403 %d, challenge %q", resp.StatusCode, h)
	}
}

func callAPIAt(t *testing.T, u, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The discovery an MCP client makes, with golang.org/x/oauth2 as the
// client: the 401 names the resource's metadata, that names the issuer,
// whose metadata names the registration endpoint; the client registers
// itself, runs the authorization code flow with PKCE and the resource, and
// calls the API.
func TestSelfRegisteringClient(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	tmpl := strings.Replace(resourceCaddyfile, "\t\tclient agent {", "\t\tregistration {\n\t\t\topen\n\t\t\tscope mcp\n\t\t}\n\t\tuser mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe\n\t\tclient agent {", 1)
	g.start(tmpl)
	resource := g.APIURL() + "/mcp"

	resp, _ := get(t, http.DefaultClient, "GET", resource)
	meta := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if meta == nil {
		t.Fatalf("no resource_metadata in %q", resp.Header.Get("WWW-Authenticate"))
	}
	var prm struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	_, body := get(t, http.DefaultClient, "GET", meta[1])
	if json.Unmarshal([]byte(body), &prm) != nil || len(prm.AuthorizationServers) != 1 {
		t.Fatalf("resource metadata %s", body)
	}
	var asm struct {
		Registration string `json:"registration_endpoint"`
		Authorize    string `json:"authorization_endpoint"`
		Token        string `json:"token_endpoint"`
	}
	_, body = get(t, http.DefaultClient, "GET", prm.AuthorizationServers[0]+"/.well-known/oauth-authorization-server")
	if json.Unmarshal([]byte(body), &asm) != nil || asm.Registration == "" {
		t.Fatalf("authorization server metadata %s", body)
	}
	reg, _ := json.Marshal(map[string]any{"client_name": "Agent", "redirect_uris": []string{"http://127.0.0.1/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	resp, err := http.Post(asm.Registration, "application/json", strings.NewReader(string(reg)))
	if err != nil {
		t.Fatal(err)
	}
	var client struct {
		ID string `json:"client_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&client)
	resp.Body.Close()
	if resp.StatusCode != 201 || client.ID == "" {
		t.Fatalf("registration: %d", resp.StatusCode)
	}
	cfg := &oauth2.Config{ClientID: client.ID, RedirectURL: "http://127.0.0.1:45679/callback", Scopes: []string{"mcp"},
		Endpoint: oauth2.Endpoint{AuthURL: asm.Authorize, TokenURL: asm.Token, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	back, err := persontest.New("mark", markPassword).Authorize(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("resource", resource)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatal(err)
	}
	if st := callAPIAt(t, resource, tok.AccessToken); st != 200 {
		t.Fatalf("the self-registered client's token at the resource: %d", st)
	}
}

// An MCP Streamable HTTP server answers with Server-Sent Events: through
// bearer_auth and reverse_proxy each event reaches the client as it is
// sent, not when the stream ends.
func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: message\ndata: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: message\ndata: second\n\n")
	}))
	defer sse.Close()
	defer close(release)
	g := newGateway(t, Ports{Upstream: strings.TrimPrefix(sse.URL, "http://")})
	g.start(resourceCaddyfile)
	tok, err := ccConfig(g, "agent", "agent-secret", oauth2.AuthStyleInHeader, "mcp").Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", g.APIURL()+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		r := bufio.NewReader(resp.Body)
		var b strings.Builder
		for !strings.Contains(b.String(), "data: first") {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			b.WriteString(line)
		}
		got <- b.String()
	}()
	select {
	case s := <-got:
		if resp.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(s, "event: message") {
			t.Fatalf("stream %q (%s)", s, resp.Header.Get("Content-Type"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open: something buffers it")
	}
}

// issuerCaddyfile is an issuer and its site, nothing else.
const issuerCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
`

// The API under handle /a/*: requests for its RFC 9728 document
// (/.well-known/oauth-protected-resource/a) never reach its bearer_auth,
// and the start-up log says so and how to fix it; with the fix (a matcher
// naming the document's path too), the document is served and nothing is
// said.
const handleCaddyfile = issuerCaddyfile + `http://127.0.0.1:{{.API}} {
	MATCHER
	handle HANDLE {
		bearer_auth {
			resource http://127.0.0.1:{{.API}}/a
			scope mcp
		}
		reverse_proxy {{.Upstream}}
	}
}
`

func TestResourceMetadataUnderHandle(t *testing.T) {
	up := newUpstream(t)
	const warning = "requests for its metadata document (/.well-known/oauth-protected-resource/a) do not reach it"
	for _, tc := range []struct {
		name, matcher, handle string
		warned                bool
	}{
		{"handle /a/*", "", "/a/*", true},
		{"a matcher naming the document too", "@api path /a/* /.well-known/oauth-protected-resource/a", "@api", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, Ports{Upstream: up.Addr()})
			g.start(strings.NewReplacer("MATCHER", tc.matcher, "HANDLE", tc.handle).Replace(handleCaddyfile))
			// The check runs at start: give the log a moment past the
			// first answer.
			deadline := time.Now().Add(2 * time.Second)
			for !strings.Contains(g.log.String(), "bearer_auth with resource") && time.Now().Before(deadline) && tc.warned {
				time.Sleep(20 * time.Millisecond)
			}
			logged := g.log.String()
			if strings.Contains(logged, warning) != tc.warned {
				t.Fatalf("warned %v, want %v:\n%s", !tc.warned, tc.warned, logged)
			}
			if tc.warned && !strings.Contains(logged, "@api path /a/* /.well-known/oauth-protected-resource/a") {
				t.Fatalf("the warning does not say the fix:\n%s", logged)
			}
			// (A path no route handles is Caddy's empty 200.)
			resp, body := get(t, http.DefaultClient, "GET", g.APIURL()+"/.well-known/oauth-protected-resource/a")
			if served := resp.StatusCode == 200 && strings.Contains(body, `"resource":`); served == tc.warned {
				t.Fatalf("the document answers %d %q", resp.StatusCode, body)
			}
		})
	}
}

// The registration block's budget, as an operator writes it: past
// max_clients, a registration is refused saying so, from any address;
// the log tells the operator the same.
func TestRegistrationBudgetFromCaddyfile(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(strings.Replace(resourceCaddyfile, "\t\tclient agent {",
		"\t\tregistration {\n\t\t\topen\n\t\t\tscope mcp\n\t\t\tmax_clients 2\n\t\t\tunused_client_ttl 1h\n\t\t}\n\t\tclient agent {", 1))
	register := func() (int, string) {
		resp, err := http.Post(g.AuthURL()+"/oauth/register", "application/json",
			strings.NewReader(`{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for i := range 2 {
		if st, body := register(); st != 201 {
			t.Fatalf("registration %d: %d %s", i+1, st, body)
		}
	}
	if st, body := register(); st != 503 || !strings.Contains(body, "max_clients") {
		t.Fatalf("past max_clients 2: %d %s", st, body)
	}
	// The process writes its log through a pipe: wait for the line.
	if !waitFor(5*time.Second, func() bool { return strings.Contains(g.log.String(), "registration's max_clients") }) {
		t.Fatalf("the log does not tell the operator:\n%s", g.log)
	}
}
