package main

import (
	"net/http"
	"strings"
)

// With -policy the load command measures bearer_auth's policy: a POST of a
// 2 KB JSON-RPC tools/call to a route with mcp_tool and mcp_method rules
// (the body read, parsed strictly, checked and passed on) against the same
// POST to the same route shape without rules, alternating five rounds of
// each (the median ratio).
//
//	go run ./test/load -policy
func measurePolicy(bin, hash, up string) {
	in := start(bin, "ES256", hash, up, "")
	defer in.stop()
	tok := in.token("plain", "plain-secret")
	body := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search","arguments":{"query":"` +
		strings.Repeat("lorem ipsum ", 165) + `"}}}`
	plain := rpcPoster(in.url(in.p.Bearer, "/mcp"), body, tok)
	gated := rpcPoster(in.url(in.p.MCPRules, "/mcp"), body, tok)
	ratio := alternatingRatio(scenario{"bearer_auth, 2 KB JSON-RPC, no rules", plain}, scenario{"bearer_auth, 2 KB JSON-RPC, mcp_tool rules", gated})
	target("mcp_tool rules on a 2 KB body ≥ 0.95 × the route without", ratio >= 0.95, "%.2f× (median of 5 alternating rounds)", ratio)
}

// rpcPoster is a loop body POSTing a JSON-RPC body with a bearer token,
// wanting 200, its headers made once.
func rpcPoster(u, body, token string) func(int) error {
	auth, ct := []string{"Bearer " + token}, []string{"application/json"}
	return func(int) error {
		req, _ := http.NewRequest("POST", u, strings.NewReader(body))
		req.Header["Content-Type"], req.Header["Authorization"] = ct, auth
		return do(req, http.StatusOK)
	}
}
