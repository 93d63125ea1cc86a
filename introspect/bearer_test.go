package introspect_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tokengate/tokengate/introspect"
)

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	good := sign(t, jwa.ES256(), f.key, stdHeader, claims())
	tests := []struct {
		name      string
		headers   []string // Authorization values
		scopes    []string
		status    int
		code      string // "" = no error code in the challenge
		outcome   introspect.Outcome
		challenge string // substring of WWW-Authenticate
	}{
		{"valid", []string{"Bearer " + good}, []string{"read"}, 200, "", introspect.OutcomeOK, ""},
		{"scheme is case-insensitive", []string{"bearer " + good}, []string{"read"}, 200, "", introspect.OutcomeOK, ""},
		{"no header", nil, nil, 401, "", introspect.OutcomeMissing, `Bearer realm="api"`},
		{"Basic credentials", []string{"Basic bWFyazpwdw=="}, nil, 401, "", introspect.OutcomeMissing, `Bearer realm="api"`},
		{"Bearer without token", []string{"Bearer"}, nil, 400, "invalid_request", introspect.OutcomeMalformed, `error="invalid_request"`},
		{"Bearer with blank token", []string{"Bearer   "}, nil, 400, "invalid_request", introspect.OutcomeMalformed, `error="invalid_request"`},
		{"two tokens", []string{"Bearer " + good + " " + good}, nil, 400, "invalid_request", introspect.OutcomeMalformed, `error="invalid_request"`},
		{"two headers", []string{"Bearer " + good, "Bearer " + good}, nil, 400, "invalid_request", introspect.OutcomeMalformed, `error="invalid_request"`},
		{"100 KB header", []string{"Bearer " + strings.Repeat("a", 100<<10)}, nil, 400, "invalid_request", introspect.OutcomeMalformed, `error="invalid_request"`},
		{"not a token", []string{"Bearer not-a-jwt"}, nil, 401, "invalid_token", introspect.OutcomeInvalid, `error="invalid_token"`},
		{"insufficient scope", []string{"Bearer " + good}, []string{"read", "admin"}, 403, "insufficient_scope", introspect.OutcomeInsufficientScope, `scope="read admin"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			c, fail := f.v.Authorize(r, tc.scopes, "")
			if tc.status == 200 {
				if fail != nil || c == nil || c.Subject != "mark" {
					t.Fatalf("refused: %+v", fail)
				}
				return
			}
			if fail == nil {
				t.Fatal("accepted")
			}
			if fail.Outcome != tc.outcome {
				t.Errorf("outcome %s, want %s", fail.Outcome, tc.outcome)
			}
			w := httptest.NewRecorder()
			introspect.WriteChallenge(w, "api", fail)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			ch := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="api"`) || !strings.Contains(ch, tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want it to contain %q", ch, tc.challenge)
			}
			if tc.code == "" && strings.Contains(ch, "error=") {
				t.Errorf("a request without a token gets no error code (RFC 6750 §3.1): %q", ch)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %q", w.Body.String())
			}
			if tc.code != "" && body["error"] != tc.code {
				t.Errorf("body error %q, want %q", body["error"], tc.code)
			}
			if body["error_description"] == "" {
				t.Error("body has no error_description")
			}
			if len(w.Body.String()) > 1000 {
				t.Error("the body echoes the oversized input")
			}
		})
	}
}

// Tokens are taken from the Authorization header only (never the query).
func TestTokenInQueryIgnored(t *testing.T) {
	f := newFixture(t)
	good := sign(t, jwa.ES256(), f.key, stdHeader, claims())
	r := httptest.NewRequest("GET", "/?access_token="+good, nil)
	if _, fail := f.v.Authorize(r, nil, ""); fail == nil || fail.Status != http.StatusUnauthorized {
		t.Fatalf("a token in the query was accepted: %+v", fail)
	}
}
