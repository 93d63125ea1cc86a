package test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tokengate/tokengate/internal/dpoptest"
)

// A route that takes DPoP-bound tokens beside bearer ones, and one that
// takes bound tokens only.
const dpopCaddyfile = `{
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
		client bound {
			secret bound-secret
			grant client_credentials
			scope read
			require_dpop
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	handle /strict/* {
		bearer_auth {
			audience https://api.example.com
			dpop required
		}
		reverse_proxy {{.Upstream}}
	}
	handle {
		bearer_auth {
			audience https://api.example.com
			scope read
		}
		reverse_proxy {{.Upstream}}
	}
}
`

// robotToken posts robot's client credentials request with the DPoP proof
// given ("" for none) and returns the answer.
func robotToken(t *testing.T, tokenURL, proof string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("robot", "robot-secret")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	return resp, m
}

// dpopTokenFor gets robot's token, with a proof of k's when k is given.
func dpopTokenFor(t *testing.T, g *gateway, k *dpoptest.Client) (string, string) {
	t.Helper()
	proof := ""
	if k != nil {
		proof = k.Proof(t, "POST", g.AuthURL()+"/oauth/token", "")
	}
	resp, m := robotToken(t, g.AuthURL()+"/oauth/token", proof)
	tok, _ := m["access_token"].(string)
	typ, _ := m["token_type"].(string)
	if resp.StatusCode != 200 || tok == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, m)
	}
	return tok, typ
}

// callWith GETs u with the token under scheme and, if given, a proof.
func callWith(t *testing.T, u, scheme, tok, proof string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", scheme+" "+tok)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The gateway end to end: a DPoP-bound token works with a proof of its key
// for the request, not without, not replayed, not as a bearer token, not
// with another key; a route that requires DPoP refuses bearer tokens; the
// challenges say which scheme to use.
func TestDPoPThroughGateway(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(dpopCaddyfile)
	k := dpoptest.New(t, jwa.ES256())
	tok, typ := dpopTokenFor(t, g, k)
	if typ != "DPoP" {
		t.Fatalf("token_type %q", typ)
	}
	api := g.APIURL() + "/things"
	call := func(u, scheme, proof string) *http.Response { return callWith(t, u, scheme, tok, proof) }
	proof := k.Proof(t, "GET", api, tok)
	if resp := call(api, "DPoP", proof); resp.StatusCode != 200 {
		t.Fatalf("a bound token with its proof: %d %v", resp.StatusCode, resp.Header)
	}
	for name, tc := range map[string]struct{ scheme, proof, want string }{
		"the same proof again":       {"DPoP", proof, `DPoP algs="`},
		"no proof":                   {"DPoP", "", `error="invalid_dpop_proof"`},
		"as a bearer token":          {"Bearer", "", `error="invalid_token"`},
		"another key's proof":        {"DPoP", dpoptest.New(t, jwa.ES256()).Proof(t, "GET", api, tok), `error="invalid_dpop_proof"`},
		"a proof for another URL":    {"DPoP", k.Proof(t, "GET", g.APIURL()+"/other", tok), `error="invalid_dpop_proof"`},
		"a proof for another method": {"DPoP", k.Proof(t, "POST", api, tok), `error="invalid_dpop_proof"`},
	} {
		resp := call(api, tc.scheme, tc.proof)
		if resp.StatusCode != 401 || !strings.Contains(strings.Join(resp.Header.Values("Www-Authenticate"), " | "), tc.want) {
			t.Errorf("%s: %d %v", name, resp.StatusCode, resp.Header.Values("Www-Authenticate"))
		}
	}
	// dpop required: a bearer token is refused, with the DPoP challenge.
	bearer, typ := dpopTokenFor(t, g, nil)
	if typ != "Bearer" {
		t.Fatalf("token_type without a proof: %q", typ)
	}
	resp, _ := get(t, http.DefaultClient, "GET", g.APIURL()+"/strict/x", "Authorization", "Bearer "+bearer)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "DPoP algs=") {
		t.Fatalf("a bearer token where DPoP is required: %d %v", resp.StatusCode, resp.Header)
	}
	strict := g.APIURL() + "/strict/x"
	if resp := call(strict, "DPoP", k.Proof(t, "GET", strict, tok)); resp.StatusCode != 200 {
		t.Fatalf("a bound token where DPoP is required: %d", resp.StatusCode)
	}
	// A client with require_dpop gets nothing without a proof.
	st, m := postForm(t, g.AuthURL()+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "bound", "bound-secret")
	if st != 400 || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("require_dpop without a proof: %d %v", st, m)
	}
	// No token: both schemes are offered.
	resp, _ = get(t, http.DefaultClient, "GET", api)
	if ch := resp.Header.Values("Www-Authenticate"); resp.StatusCode != 401 || len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer") || !strings.HasPrefix(ch[1], "DPoP algs=") {
		t.Fatalf("without a token: %d %v", resp.StatusCode, ch)
	}
}

// With dpop_nonce, proofs must carry the server's nonce: the token
// endpoint and the route answer use_dpop_nonce with a DPoP-Nonce header,
// and the proof made again with it passes (RFC 9449 §8, §9).
func TestDPoPNonces(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(strings.Replace(dpopCaddyfile, "\t\tissuer {{.Issuer}}\n", "\t\tissuer {{.Issuer}}\n\t\tdpop_nonce\n", 1))
	k := dpoptest.New(t, jwa.ES256())
	tokenURL := g.AuthURL() + "/oauth/token"
	post := func(proof string) (*http.Response, map[string]any) { return robotToken(t, tokenURL, proof) }
	resp, m := post(k.Proof(t, "POST", tokenURL, ""))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 400 || m["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("a proof without the nonce: %d %v %v", resp.StatusCode, m, resp.Header)
	}
	resp, m = post(k.Proof(t, "POST", tokenURL, "", dpoptest.Options{Claims: map[string]any{"nonce": nonce}}))
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("the proof with the nonce: %d %v", resp.StatusCode, m)
	}
	tok := m["access_token"].(string)
	api := g.APIURL() + "/things"
	call := func(proof string) *http.Response { return callWith(t, api, "DPoP", tok, proof) }
	resp = call(k.Proof(t, "GET", api, tok))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("Www-Authenticate"), `error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("a resource proof without the nonce: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := call(k.Proof(t, "GET", api, tok, dpoptest.Options{Claims: map[string]any{"nonce": resp.Header.Get("DPoP-Nonce")}})); resp.StatusCode != 200 {
		t.Fatalf("a resource proof with the nonce: %d %v", resp.StatusCode, resp.Header)
	}
}

// Caddy's request logs redact Authorization and Cookie but know nothing
// of DPoP, and they copy the request before any handler runs, so no
// module can take the proof out of them. The log filter the DPoP guide gives
// does: a 502's error line shows the DPoP header as REDACTED. (Without it
// the proof is there, spent: its jti was recorded when it was checked.)
// dpopLogFilter is the DPoP guide's, verbatim.
const dpopLogFilter = `log {
		format filter {
			wrap json
			fields {
				request>headers>Dpop replace REDACTED
			}
		}
	}`

func TestDPoPProofsOutOfTheLog(t *testing.T) {
	guide, err := os.ReadFile("../docs/guides/dpop.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(indentless(string(guide)), indentless(dpopLogFilter)) {
		t.Fatalf("the DPoP guide does not give the log filter this test runs:\n%s", dpopLogFilter)
	}
	dead := freePort(t) // nothing listens: the upstream's 502
	for _, filtered := range []bool{false, true} {
		g := newGateway(t, Ports{Upstream: "127.0.0.1:" + itoa(dead)})
		logCfg := ""
		if filtered {
			logCfg = dpopLogFilter
		}
		g.start(strings.Replace(dpopCaddyfile, "persist_config off", "persist_config off\n\t"+logCfg, 1))
		k := dpoptest.New(t, jwa.ES256())
		tok, _ := dpopTokenFor(t, g, k)
		api := g.APIURL() + "/strict/things"
		proof := k.Proof(t, "GET", api, tok)
		if resp := callWith(t, api, "DPoP", tok, proof); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("filtered %v: the call answered %d, want the dead upstream's 502", filtered, resp.StatusCode)
		}
		deadline := time.Now().Add(2 * time.Second)
		for !strings.Contains(g.log.String(), `"status":502`) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		logged := g.log.String()
		if !strings.Contains(logged, `"status":502`) {
			t.Fatalf("no error line for the 502:\n%s", logged)
		}
		if strings.Contains(logged, tok) {
			t.Fatal("the access token is in the log")
		}
		if filtered && (strings.Contains(logged, proof) || !strings.Contains(logged, `"Dpop":"REDACTED"`)) {
			t.Fatalf("with the DPoP guide's filter the proof is not redacted:\n%s", logged)
		}
		if !filtered && !strings.Contains(logged, proof) {
			t.Log("Caddy now redacts DPoP itself: the guide's filter can go")
		}
		g.stop()
	}
}

// indentless is text with each line's leading white space removed.
func indentless(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}
