package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"
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
	tok := in.token("plain", "plain-secret")
	body := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search","arguments":{"query":"` +
		strings.Repeat("lorem ipsum ", 165) + `"}}}`
	plain := rpcPoster(in.url(in.p.Bearer, "/mcp"), body, tok)
	gated := rpcPoster(in.url(in.p.MCPRules, "/mcp"), body, tok)
	ratio := alternatingRatio(scenario{"bearer_auth, 2 KB JSON-RPC, no rules", plain}, scenario{"bearer_auth, 2 KB JSON-RPC, mcp_tool rules", gated})
	target("mcp_tool rules on a 2 KB body ≥ 0.95 × the route without", ratio >= 0.95, "%.2f× (median of 5 alternating rounds)", ratio)

	// rate_limit: a figure no client reaches, so that every request is
	// counted and let through.
	bearer := func(int) error { return get(in.url(in.p.Bearer, "/"), tok) }
	local := func(int) error { return get(in.url(in.p.RateLocal, "/"), tok) }
	ratio = alternatingRatio(scenario{"bearer_auth, no rate_limit", bearer}, scenario{"bearer_auth, rate_limit (local)", local})
	target("a local rate_limit ≥ 0.98 × the route without", ratio >= 0.98, "%.2f× (median of 5 alternating rounds)", ratio)
	shared := func(int) error { return get(in.url(in.p.RateShared, "/"), tok) }
	ratio = alternatingRatio(scenario{"bearer_auth, no rate_limit", bearer}, scenario{"bearer_auth, rate_limit shared (file store)", shared})
	fmt.Printf("       a shared rate_limit on the file store: %.2f× the route without (one write transaction a request)\n", ratio)
	in.stop()

	prefix := fmt.Sprintf("tgload%d:", time.Now().UnixNano()%1_000_000)
	rd := start(bin, "ES256", hash, up, fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\tprefix %s\n\t\t}", *redisURL, prefix))
	defer rd.stop()
	rtok := rd.token("plain", "plain-secret")
	rbearer := func(int) error { return get(rd.url(rd.p.Bearer, "/"), rtok) }
	rshared := func(int) error { return get(rd.url(rd.p.RateShared, "/"), rtok) }
	ratio = alternatingRatio(scenario{"bearer_auth, no rate_limit (Redis store)", rbearer}, scenario{"bearer_auth, rate_limit shared (Redis)", rshared})
	fmt.Printf("       a shared rate_limit on Redis: %.2f× the route without (one round trip a request)\n", ratio)
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
