package policy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/policy"
)

var rules = &policy.MCP{
	Tools:   []policy.Rule{{Pattern: "delete_*", Scopes: []string{"mcp:admin"}}, {Pattern: "search", Scopes: []string{"mcp:read"}}},
	Methods: []policy.Rule{{Pattern: "resources/read", Scopes: []string{"mcp:read"}}},
}

func call(id int, tool string) string {
	return `{"jsonrpc":"2.0","id":` + string(rune('0'+id)) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

// post is a POST of body to the MCP route, with headers as pairs.
func post(body string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// JSON-RPC as an MCP client sends it, and as an attacker might: what each
// message needs, and what is refused before any scope is looked at.
func TestMCPRules(t *testing.T) {
	for name, c := range map[string]struct {
		req    *http.Request
		scope  string // the token's
		status int    // 0: let through
		need   string // the scope a refusal names
	}{
		"an ungated tool":                    {post(call(1, "echo")), "mcp", 0, ""},
		"a gated tool without its scope":     {post(call(1, "delete_repo")), "mcp", 403, "mcp mcp:admin"},
		"a gated tool with its scope":        {post(call(1, "delete_repo")), "mcp mcp:admin", 0, ""},
		"a tool named with escapes":          {post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\u0064elete_repo"}}`), "mcp", 403, "mcp mcp:admin"},
		"a gated method":                     {post(`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}`), "mcp", 403, "mcp mcp:read"},
		"a batch with one gated call":        {post("[" + call(1, "echo") + "," + call(2, "delete_repo") + "]"), "mcp", 403, "mcp mcp:admin"},
		"a batch needing two scopes":         {post("[" + call(1, "search") + "," + call(2, "delete_x") + "]"), "mcp mcp:read", 403, "mcp mcp:read mcp:admin"},
		"a batch of allowed calls":           {post("[" + call(1, "search") + "," + call(2, "echo") + "]"), "mcp mcp:read", 0, ""},
		"a notification":                     {post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), "mcp", 0, ""},
		"a tools/call without an id":         {post(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_repo"}}`), "mcp", 403, "mcp mcp:admin"},
		"a response":                         {post(`{"jsonrpc":"2.0","id":7,"result":{}}`), "mcp", 0, ""},
		"not JSON":                           {post(`hello`), "mcp", 0, ""},
		"JSON cut short":                     {post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"`), "mcp", 400, ""},
		"trailing data":                      {post(call(1, "echo") + `{"x":1}`), "mcp", 400, ""},
		"invalid UTF-8 in a name":            {post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_` + "\xff" + `"}}`), "mcp mcp:admin", 400, ""},
		"a duplicate deep in arguments":      {post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"a":2}}}`), "mcp", 400, ""},
		"JSON, not JSON-RPC":                 {post(`{"tool":"delete_repo"}`), "mcp", 0, ""},
		"a duplicated name":                  {post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_repo"}}`), "mcp mcp:admin", 400, ""},
		"a duplicated method":                {post(`{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"x"}}`), "mcp mcp:admin", 400, ""},
		"a tools/call with no name":          {post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`), "mcp mcp:admin", 400, ""},
		"headers that agree":                 {post(call(1, "echo"), "Mcp-Method", "tools/call", "Mcp-Name", "echo"), "mcp", 0, ""},
		"a method header that disagrees":     {post(call(1, "delete_repo"), "Mcp-Method", "ping"), "mcp mcp:admin", 400, ""},
		"a name header that disagrees":       {post(call(1, "delete_repo"), "Mcp-Method", "tools/call", "Mcp-Name", "echo"), "mcp mcp:admin", 400, ""},
		"a name header for resources/read":   {post(`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}`, "Mcp-Name", "file:///a"), "mcp mcp:read", 0, ""},
		"headers on a batch":                 {post("["+call(1, "echo")+"]", "Mcp-Method", "tools/call"), "mcp", 400, ""},
		"headers on a body that is not JSON": {post(`hello`, "Mcp-Method", "tools/call"), "mcp", 400, ""},
		"two method headers":                 {post(call(1, "echo"), "Mcp-Method", "tools/call", "Mcp-Method", "tools/call"), "mcp", 400, ""},
		"a body over 1 MiB":                  {post(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", policy.MaxBody) + `"}}`), "mcp", 413, ""},
		"a GET (an SSE stream)":              {httptest.NewRequest(http.MethodGet, "https://mcp.example.com/mcp", nil), "mcp", 0, ""},
	} {
		t.Run(name, func(t *testing.T) {
			var sent []byte
			if c.req.Body != nil {
				sent, _ = io.ReadAll(c.req.Body)
				c.req.Body = io.NopCloser(bytes.NewReader(sent))
			}
			f := rules.Authorize(c.req, &introspect.Claims{Scope: c.scope}, []string{"mcp"})
			switch {
			case c.status == 0 && f != nil:
				t.Fatalf("refused: %d %s", f.Status, f.Description)
			case c.status != 0 && (f == nil || f.Status != c.status):
				t.Fatalf("got %+v, want %d", f, c.status)
			case c.status == 403 && (f.Code != "insufficient_scope" || f.Scope != c.need):
				t.Fatalf("the refusal names %q (%s), want %q", f.Scope, f.Code, c.need)
			case c.status == 400 && f.Code != "invalid_request":
				t.Fatalf("code %s", f.Code)
			}
			if f == nil && c.req.Body != nil {
				// The upstream reads the body the client sent, byte for byte.
				got, _ := io.ReadAll(c.req.Body)
				if !bytes.Equal(got, sent) {
					t.Fatalf("the body passed on differs: %q, sent %q", got, sent)
				}
			}
		})
	}
}

// failingBody fails the test that reads it.
type failingBody struct{ t *testing.T }

func (b failingBody) Read([]byte) (int, error) {
	b.t.Error("the body was read")
	return 0, errors.New("read")
}
func (failingBody) Close() error { return nil }

// A route without rules never reads a body, and one with rules never reads
// a GET's.
func TestMCPRulesReadNoBodyNeedlessly(t *testing.T) {
	r := post("")
	r.Body = failingBody{t}
	var none *policy.MCP
	if f := none.Authorize(r, &introspect.Claims{Scope: "mcp"}, []string{"mcp"}); f != nil {
		t.Fatal(f.Description)
	}
	if f := (&policy.MCP{}).Authorize(r, &introspect.Claims{Scope: "mcp"}, []string{"mcp"}); f != nil {
		t.Fatal(f.Description)
	}
	g := httptest.NewRequest(http.MethodGet, "https://mcp.example.com/mcp", nil)
	g.Body = failingBody{t}
	if f := rules.Authorize(g, &introspect.Claims{Scope: "mcp"}, []string{"mcp"}); f != nil {
		t.Fatal(f.Description)
	}
}

func TestMCPRulesValidate(t *testing.T) {
	for _, bad := range []*policy.MCP{
		{Tools: []policy.Rule{{Pattern: "[", Scopes: []string{"x"}}}},
		{Tools: []policy.Rule{{Pattern: "", Scopes: []string{"x"}}}},
		{Methods: []policy.Rule{{Pattern: "tools/call"}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if err := rules.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rules.Scopes(), " "); got != "mcp:admin mcp:read" {
		t.Fatalf("scopes %q", got)
	}
}

// BenchmarkMCPRules is a 2 KB tools/call through the rules: the body read,
// parsed, checked and handed back.
func BenchmarkMCPRules(b *testing.B) {
	body := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search","arguments":{"query":"` + strings.Repeat("lorem ipsum ", 165) + `"}}}`
	c := &introspect.Claims{Scope: "mcp mcp:read"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := post(body)
	rd := strings.NewReader(body)
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		if f := rules.Authorize(r, c, []string{"mcp"}); f != nil {
			b.Fatal(f.Description)
		}
	}
}
