package caddymodule

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// htu is the URL the client called: forwarded scheme and host count only
// from a proxy Caddy trusts (trusted_proxies).
func TestRequestURL(t *testing.T) {
	for name, tc := range map[string]struct {
		trusted bool
		want    string
	}{
		"direct":               {false, "http://api.internal:8080/things"},
		"from a trusted proxy": {true, "https://api.example.com/things"},
	} {
		r := httptest.NewRequest("GET", "http://api.internal:8080/things?x=1", nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "api.example.com")
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.TrustedProxyVarKey: tc.trusted}))
		if got := requestURL(r); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}
