package test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// mcpPolicyCaddyfile gates an MCP route's tools and methods; robot holds
// mcp and mcp:read, admin-bot mcp:admin too.
const mcpPolicyCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client robot {
			secret robot-secret
			grant client_credentials
			scope mcp mcp:read
			audience http://127.0.0.1:{{.API}}/mcp
		}
		client admin-bot {
			secret admin-secret
			grant client_credentials
			scope mcp mcp:read mcp:admin
			audience http://127.0.0.1:{{.API}}/mcp
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		resource http://127.0.0.1:{{.API}}/mcp
		scope mcp
		mcp_tool delete_* mcp:admin
		mcp_method resources/read mcp:read
	}
	reverse_proxy {{.Upstream}} {
		flush_interval -1
	}
}
`

// bodyUpstream answers a POST with the SHA-256 of the body it received,
// and a GET with a server-sent event stream that sends one event, then
// holds until release is closed and sends another.
type bodyUpstream struct {
	*httptest.Server
	release chan struct{}
}

func newBodyUpstream(t *testing.T) *bodyUpstream {
	u := &bodyUpstream{release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: message\ndata: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "event: message\ndata: second\n\n")
			return
		}
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		fmt.Fprint(w, hex.EncodeToString(sum[:]))
	}))
	t.Cleanup(func() { u.Close() })
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
	})
	return u
}

// An MCP route with mcp_tool and mcp_method rules through the real binary,
// on raw JSON-RPC: what passes reaches the upstream byte for byte, a gated
// tool or method without its scope is 403 naming every scope needed, a
// disagreeing header or a duplicated member is 400, a body over 1 MiB is
// 413, SSE still streams, and the resource metadata lists the rules'
// scopes.
func TestMCPRulesThroughTheBinary(t *testing.T) {
	up := newBodyUpstream(t)
	g := newGateway(t, Ports{Upstream: strings.TrimPrefix(up.URL, "http://")})
	g.start(mcpPolicyCaddyfile)
	robot, err := ccToken(t, g, "robot", "robot-secret")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := ccToken(t, g, "admin-bot", "admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	mcpURL := g.APIURL() + "/mcp"
	send := func(token, body string, headers ...string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	digest := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	call := func(id int, tool string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, tool)
	}

	// Let through, the body as sent: odd spacing, escapes, a batch.
	for _, body := range []string{
		call(1, "echo"),
		"  {\"jsonrpc\" : \"2.0\", \"id\":1,\n \"method\":\"tools/call\",\"params\":{\"name\":\"echo\\u0021\"}}\n",
		"[" + call(1, "echo") + "," + `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "]",
	} {
		if resp, got := send(robot, body); resp.StatusCode != 200 || got != digest(body) {
			t.Fatalf("%q: %d %q, want the body's digest", body, resp.StatusCode, got)
		}
	}
	// The admin's token takes the gated tool, in a batch too.
	if resp, got := send(admin, "["+call(1, "echo")+","+call(2, "delete_repo")+"]"); resp.StatusCode != 200 || len(got) != 64 {
		t.Fatalf("the admin's batch: %d %s", resp.StatusCode, got)
	}
	for name, c := range map[string]struct {
		body    string
		headers []string
		status  int
		scope   string
	}{
		"a gated tool":                {call(1, "delete_repo"), nil, 403, "mcp mcp:admin"},
		"a gated tool in a batch":     {"[" + call(1, "echo") + "," + call(2, "delete_all") + "]", nil, 403, "mcp mcp:admin"},
		"a name header disagreeing":   {call(1, "delete_repo"), []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo"}, 400, ""},
		"a method header disagreeing": {call(1, "echo"), []string{"Mcp-Method", "ping"}, 400, ""},
		"a duplicated member":         {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_repo"}}`, nil, 400, ""},
		"a body over 1 MiB":           {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`, nil, 413, ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp, got := send(robot, c.body, c.headers...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, got)
			}
			if c.status == 403 {
				challenge := resp.Header.Get("WWW-Authenticate")
				if !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="`+c.scope+`"`) ||
					!strings.Contains(challenge, `resource_metadata="http://127.0.0.1:`) {
					t.Fatalf("challenge %q", challenge)
				}
			}
		})
	}
	// The method rule: resources/read needs mcp:read, which robot has.
	read := `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///x"}}`
	if resp, got := send(robot, read, "Mcp-Method", "resources/read", "Mcp-Name", "file:///x"); resp.StatusCode != 200 || got != digest(read) {
		t.Fatalf("resources/read: %d %s", resp.StatusCode, got)
	}

	// An SSE stream still streams: the first event arrives while the
	// upstream holds the second back.
	req, _ := http.NewRequest(http.MethodGet, mcpURL, nil)
	req.Header.Set("Authorization", "Bearer "+robot)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "data:") {
				first <- line
				return
			}
		}
	}()
	select {
	case line := <-first:
		if strings.TrimSpace(line) != "data: first" {
			t.Fatalf("the stream's first event: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open")
	}
	close(up.release)

	// The resource metadata lists the tools' and methods' scopes.
	var doc struct {
		Scopes []string `json:"scopes_supported"`
	}
	mresp, err := http.Get(g.APIURL() + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	if err := json.NewDecoder(mresp.Body).Decode(&doc); err != nil || strings.Join(doc.Scopes, " ") != "mcp mcp:admin mcp:read" {
		t.Fatalf("scopes_supported %v %v", doc.Scopes, err)
	}
	// A 401 still asks for the route's scope alone.
	if resp, _ := send("", call(1, "echo")); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="mcp"`) {
		t.Fatalf("401: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
