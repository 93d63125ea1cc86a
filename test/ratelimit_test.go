package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/internal/redistest"
)

// rateCaddyfile limits each client of the API to 3 requests in 2 s
// (RATE_LINE's figure), burst included; quick has its own figure, 1 in 2 s.
const rateCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		client robot {
			secret robot-secret
			grant client_credentials
			scope read
			audience https://api.example.com
		}
		client other {
			secret other-secret
			grant client_credentials
			scope read
			audience https://api.example.com
		}
		client quick {
			secret quick-secret
			grant client_credentials
			scope read
			audience https://api.example.com
			rate_limit 1/2s
			token_rate_limit 3/10s
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
	handle /console/* {
		basic_auth {
			ops $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
		}
		oauth2_console
	}
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		audience https://api.example.com
		scope read
		RATE_LINE
	}
	reverse_proxy {{.Upstream}}
}
`

func rateConfig(line string) string { return strings.Replace(rateCaddyfile, "RATE_LINE", line, 1) }

// rateCall GETs the API with token and returns the answer.
func rateCall(t *testing.T, g *gateway, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", g.APIURL()+"/things", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// A local rate_limit through the binary: 3 at once, then 429 with
// Retry-After and the RateLimit fields before the upstream sees anything;
// refused tokens count nothing; other clients have their own budget; a
// client's own figure replaces the route's; the budget comes back; the
// metric and the console count it.
func TestRateLimitPerClient(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: "store file"})
	g.start(rateConfig("rate_limit 3/2s per client"))
	robot, err := ccToken(t, g, "robot", "robot-secret")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ccToken(t, g, "other", "other-secret")
	quick, _ := ccToken(t, g, "quick", "quick-secret")

	// Refused tokens take nothing from anyone's budget.
	for range 5 {
		if resp := rateCall(t, g, robot+"x"); resp.StatusCode != 401 {
			t.Fatalf("a bad token: %d", resp.StatusCode)
		}
	}
	start := time.Now()
	for i := range 3 {
		if resp := rateCall(t, g, robot); resp.StatusCode != 200 {
			t.Fatalf("request %d within the limit: %d", i, resp.StatusCode)
		}
	}
	before := len(up.seen())
	resp := rateCall(t, g, robot)
	if resp.StatusCode != 429 {
		t.Fatalf("the 4th request: %d", resp.StatusCode)
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 2 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if p := resp.Header.Get("RateLimit-Policy"); p != `"per-client";q=3;w=2` {
		t.Fatalf("RateLimit-Policy %q", p)
	}
	if rl := resp.Header.Get("RateLimit"); !strings.HasPrefix(rl, `"per-client";r=0;t=`) {
		t.Fatalf("RateLimit %q", rl)
	}
	if len(up.seen()) != before {
		t.Fatal("the upstream saw a refused request")
	}
	// Another client has its own budget; quick has its own figure.
	if resp := rateCall(t, g, other); resp.StatusCode != 200 {
		t.Fatalf("another client: %d", resp.StatusCode)
	}
	if resp := rateCall(t, g, quick); resp.StatusCode != 200 {
		t.Fatalf("quick's first: %d", resp.StatusCode)
	}
	if resp := rateCall(t, g, quick); resp.StatusCode != 429 || resp.Header.Get("RateLimit-Policy") != `"per-client";q=1;w=2` {
		t.Fatalf("quick's second: %d %q", resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
	}
	// The refusals took nothing: a request's worth (2/3 s) after the
	// first three, one more goes, and only one.
	time.Sleep(time.Until(start.Add(700 * time.Millisecond)))
	if resp := rateCall(t, g, robot); resp.StatusCode != 200 {
		t.Fatalf("after a request's worth: %d", resp.StatusCode)
	}
	if resp := rateCall(t, g, robot); resp.StatusCode != 429 {
		t.Fatalf("two after a request's worth: %d", resp.StatusCode)
	}

	if m := metricsOf(t, g); !strings.Contains(m, `tokengate_rate_limit_total{client_id="robot",result="refused",route="https://api.example.com"`) ||
		!strings.Contains(m, `tokengate_rate_limit_total{client_id="quick",result="refused"`) {
		t.Fatalf("the metric:\n%s", grepLines(m, "rate_limit"))
	}
	ops := persontest.New("", "")
	creq, _ := http.NewRequest("GET", g.AuthURL()+"/console/clients", nil)
	creq.SetBasicAuth("ops", markPassword)
	cresp, err := ops.HTTP.Do(creq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cresp.Body)
	cresp.Body.Close()
	page := string(body)
	if i := strings.Index(page, `data-client="robot"`); i < 0 || !strings.Contains(page[i:], "refused in the last hour") {
		t.Fatalf("the console's clients page:\n%s", page)
	}
}

// tokenRequest asks for a client_credentials token: the status, the
// Retry-After header and the error code.
func tokenRequest(t *testing.T, g *gateway, id, secret string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.AuthURL()+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body.Error
}

// token_rate_limit counts a client's token requests in the store, on
// every instance: over it, 429 with Retry-After; other clients are not
// touched, and a wrong secret spends nothing.
func TestTokenRateLimit(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(rateConfig("rate_limit 100/1s"))
		for range 3 {
			if status, _, _ := tokenRequest(t, g, "quick", "wrong"); status != 401 {
				t.Fatalf("a wrong secret: %d", status)
			}
		}
		for i := range 3 {
			if status, _, _ := tokenRequest(t, g, "quick", "quick-secret"); status != 200 {
				t.Fatalf("token %d: %d", i, status)
			}
		}
		status, retry, code := tokenRequest(t, g, "quick", "quick-secret")
		if n, err := strconv.Atoi(retry); status != 429 || code != "too_many_requests" || err != nil || n < 1 || n > 4 {
			t.Fatalf("the fourth: %d %q %q", status, retry, code)
		}
		if status, _, _ := tokenRequest(t, g, "robot", "robot-secret"); status != 200 {
			t.Fatalf("another client: %d", status)
		}
	})
}

// A subject's budget is its own, whichever client its tokens come from.
func TestRateLimitPerSubject(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: "store file"})
	g.start(rateConfig("rate_limit 1/10s per subject"))
	robot, _ := ccToken(t, g, "robot", "robot-secret")
	other, _ := ccToken(t, g, "other", "other-secret")
	// Client credentials tokens are their client's: two subjects.
	for _, tok := range []string{robot, other} {
		if resp := rateCall(t, g, tok); resp.StatusCode != 200 {
			t.Fatalf("first request: %d", resp.StatusCode)
		}
	}
	if resp := rateCall(t, g, robot); resp.StatusCode != 429 || resp.Header.Get("RateLimit-Policy") != `"per-subject";q=1;w=10` {
		t.Fatalf("robot again: %d %q", resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
	}
}

// A shared rate_limit is one budget for every instance on one Redis; a
// store that cannot count lets requests through by default (counted), or
// refuses them with on_store_error deny.
func TestRateLimitShared(t *testing.T) {
	srv := redistest.Start(t)
	storeLine := redisStoreLine(t, srv)
	up := newUpstream(t)
	a := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
	a.start(rateConfig("rate_limit 3/10s per client shared"))
	b := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine, Issuer: a.Ports.Issuer})
	b.start(rateConfig("rate_limit 3/10s per client shared\n\t\ton_store_error deny"))
	robot, err := ccToken(t, a, "robot", "robot-secret")
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range []*gateway{a, b, a} {
		if resp := rateCall(t, g, robot); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	for _, g := range []*gateway{a, b} {
		if resp := rateCall(t, g, robot); resp.StatusCode != 429 {
			t.Fatalf("over the shared budget: %d", resp.StatusCode)
		}
	}
	srv.Stop()
	defer srv.Resume()
	if resp := rateCall(t, a, robot); resp.StatusCode != 200 {
		t.Fatalf("the store down, allow: %d", resp.StatusCode)
	}
	if resp := rateCall(t, b, robot); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the store down, deny: %d", resp.StatusCode)
	}
	if m := metricsOf(t, a); !strings.Contains(m, `tokengate_rate_limit_total{client_id="robot",result="store_error"`) {
		t.Fatalf("the metric:\n%s", grepLines(m, "rate_limit"))
	}
}

// A shared rate_limit on the file store counts in it.
func TestRateLimitSharedOnFileStore(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: "store file"})
	g.start(rateConfig("rate_limit 2/10s shared"))
	robot, _ := ccToken(t, g, "robot", "robot-secret")
	for i := range 2 {
		if resp := rateCall(t, g, robot); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if resp := rateCall(t, g, robot); resp.StatusCode != 429 {
		t.Fatalf("over it: %d", resp.StatusCode)
	}
}

// Errors name the line: a bad figure, a per that is neither, on_store_error
// without shared, a client's bad figure, MCP rules without a pattern or
// scopes.
func TestPolicyConfigErrors(t *testing.T) {
	for line, want := range map[string]string{
		"rate_limit 3/fortnight":                       "the window must be a duration",
		"rate_limit 0/1s":                              "n at least 1",
		"rate_limit 3/1s per tenant":                   `"per"`,
		"rate_limit 3/1s\n\t\ton_store_error deny":     "on_store_error goes with a shared rate_limit",
		"rate_limit 3/1s shared\n\t\ton_store_error x": "on_store_error takes allow or deny",
		"mcp_tool [delete mcp:admin":                   "is not a name or a glob",
		"mcp_tool delete_*":                            "takes a name (or a glob such as delete_*) and the scopes it needs",
		"mcp_method":                                   "mcp_method takes a name",
	} {
		out, err := adaptConfig(t, rateConfig(line))
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%q: %v\n%s", line, err, out)
		}
	}
	out, err := adaptConfig(t, strings.Replace(rateConfig("rate_limit 3/1s"), "rate_limit 1/2s", "rate_limit lots", 1))
	if err == nil || !strings.Contains(out, "client quick") {
		t.Errorf("a client's bad figure: %v\n%s", err, out)
	}
}

// adaptConfig adapts a config template with placeholder ports, as
// `tokengate adapt` would the reader's: its output, and its error.
func adaptConfig(t *testing.T, tmpl string) (string, error) {
	t.Helper()
	cfg := strings.NewReplacer("{{.Admin}}", "2999", "{{.Issuer}}", "http://127.0.0.1:1", "{{.Store}}", "store file",
		"{{.Auth}}", "1", "{{.API}}", "2", "{{.Upstream}}", "127.0.0.1:3").Replace(tmpl)
	path := t.TempDir() + "/Caddyfile"
	writeFile(t, path, cfg)
	out, err := run(t, nil, "adapt", "--config", path, "--adapter", "caddyfile")
	return strings.ReplaceAll(out, `\"`, `"`), err
}

// metricsOf is the gateway's Prometheus text.
func metricsOf(t *testing.T, g *gateway) string { return scrape(t, g) }
