package main

import (
	"fmt"
	"net/http"
	"net/url"
)

// With -openid the load command measures the OpenID Provider on one
// instance, each pair as alternatingRatio does (loaded together, the two
// sides of a pair would share the server's queue, and a side whose
// requests cost more would slow the other as much as itself):
//
//   - the token endpoint's refresh grant with openid (an ID token beside
//     the access token: one signature more) against the same grant
//     without it, for a client with RS256 ID tokens (the default) and
//     one with ES256 ones;
//
//   - userinfo (the access token checked as bearer_auth checks it, the
//     person's claims from the configuration) against introspection of
//     the same token.
//
//     go run ./test/load -openid
func measureOpenID(bin, hash, up string) {
	in := start(bin, "ES256", hash, up, "")
	defer in.stop()
	plain := in.refreshesOf("plain", "read")
	for _, c := range []struct{ client, alg string }{{"oidc-es", "ES256"}, {"oidc", "RS256"}} {
		withID := in.refreshesOf(c.client, "read", "openid", "profile", "email")
		ratio := alternatingRatio(scenario{"refresh without openid", plain}, scenario{"refresh with openid, " + c.alg + " ID token", withID})
		target("token endpoint with openid ("+c.alg+" ID token) ≥ 0.8 × without", ratio >= 0.8, "%.2f× (median of 5 alternating rounds)", ratio)
	}

	// One access token with openid, for both endpoints.
	rt := in.codeFlowOf("oidc-es", "oidc-es-secret", "read", "openid", "profile", "email")
	m, err := postForm(in.url(in.p.Auth, "/oauth/token"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "oidc-es", "oidc-es-secret")
	if err != nil {
		die("an openid access token: %v", err)
	}
	tok := m["access_token"].(string)
	userinfo := func(int) error {
		req, _ := http.NewRequest("GET", in.url(in.p.Auth, "/oauth/userinfo"), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(req, http.StatusOK)
	}
	introspect := func(int) error {
		m, err := postForm(in.url(in.p.Auth, "/oauth/introspect"), url.Values{"token": {tok}}, "rs", "rs-secret")
		if err == nil && m["active"] != true {
			err = fmt.Errorf("inactive: %v", m)
		}
		return err
	}
	ratio := alternatingRatio(scenario{"introspection", introspect}, scenario{"userinfo", userinfo})
	target("userinfo ≥ 0.9 × introspection", ratio >= 0.9, "%.2f× (median of 5 alternating rounds)", ratio)
}
