package authserver_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkClientCredentials is one client_credentials token request through
// the token endpoint's handler (parse, authenticate, sign, respond), with a
// bcrypt secret_hash client and with a plain-secret client.
//
//	go test ./authserver -run XXX -bench ClientCredentials -benchmem
func BenchmarkClientCredentials(b *testing.B) {
	b.Run("secret_hash-bcrypt", func(b *testing.B) { benchToken(b, "svc", "s3cret") })
	b.Run("secret-plain", func(b *testing.B) { benchToken(b, "odd:id", "p@ss:w+rd %") })
}

func benchToken(b *testing.B, id, secret string) {
	e := newEnv(b)
	h := e.srv.Handler("/oauth/token")
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
