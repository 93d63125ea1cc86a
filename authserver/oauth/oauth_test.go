package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver/oauth"
)

// RFC 7636 Appendix B's example.
func TestVerifyPKCE(t *testing.T) {
	const verifier, challenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if !oauth.PKCEVerifier.MatchString(verifier) || !oauth.PKCEChallenge.MatchString(challenge) || !oauth.VerifyPKCE(challenge, verifier) {
		t.Fatal("RFC 7636's example does not verify")
	}
	if oauth.VerifyPKCE(challenge, verifier+"x") {
		t.Fatal("another verifier verifies")
	}
}

func TestValidScopeToken(t *testing.T) {
	for s, want := range map[string]bool{"read": true, "mcp:tools/call": true, "": false, "a b": false, `a"b`: false, `a\b`: false, "é": false} {
		if oauth.ValidScopeToken(s) != want {
			t.Errorf("%q: %v", s, !want)
		}
	}
}

// HasScope matches whole scope tokens, never a prefix or substring.
func TestHasScope(t *testing.T) {
	for _, c := range []struct {
		scope, one string
		want       bool
	}{{"openid profile", "openid", true}, {"profile  openid", "openid", true}, {"openid:x", "openid", false}, {"open", "openid", false}, {"", "openid", false}} {
		if oauth.HasScope(c.scope, c.one) != c.want {
			t.Errorf("HasScope(%q, %q) = %v", c.scope, c.one, !c.want)
		}
	}
}

// ReadForm takes a POSTed form body, each parameter once, nothing in the
// query; anything else is a clear invalid_request (or 405).
func TestReadForm(t *testing.T) {
	read := func(method, target, ctype, body string) (int, string) {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		_, e := oauth.ReadForm(w, r)
		if e == nil {
			return 0, ""
		}
		oauth.WriteError(w, e)
		return w.Code, e.Description
	}
	const form = "application/x-www-form-urlencoded"
	if st, msg := read("POST", "/t", form, "grant_type=x&scope=a"); st != 0 {
		t.Fatalf("a good form: %d %s", st, msg)
	}
	for name, tc := range map[string]struct{ method, target, ctype, body, want string }{
		"GET":         {"GET", "/t", form, "", "use POST"},
		"query":       {"POST", "/t?client_secret=s", form, "a=b", "not in the URL query"},
		"JSON":        {"POST", "/t", "application/json", "{}", "x-www-form-urlencoded body"},
		"twice":       {"POST", "/t", form, "a=1&a=2", "more than once"},
		"too large":   {"POST", "/t", form, "a=" + strings.Repeat("x", oauth.MaxFormBytes), "larger than"},
		"not encoded": {"POST", "/t", form, "a=%zz", "not valid"},
	} {
		st, msg := read(tc.method, tc.target, tc.ctype, tc.body)
		if st != http.StatusBadRequest && st != http.StatusMethodNotAllowed || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want %q", name, st, msg, tc.want)
		}
	}
}

// Limits count an IPv4 address as itself and an IPv6 address as its /64,
// however it is written.
func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7",
		"::ffff:192.0.2.7":         "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"2001:db8:1:2::9%eth0":     "2001:db8:1:2::/64",
		"2001:0db8:0001:0002::abc": "2001:db8:1:2::/64",
		"not an address":           "not an address",
	} {
		if got := oauth.AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}
