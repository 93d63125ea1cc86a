package main

import "net/url"

// With -exchange the load command measures token exchange (RFC 8693):
// a client exchanging one subject token (tokengate's own, so its check is
// the validator's cached one) for a token for the bearer_auth site, against
// client_credentials with a secret, alternating five rounds of each (the
// median ratio): one signature each, and the exchange's subject check.
//
//	go run ./test/load -exchange
func measureExchange(bin, hash, up string) {
	in := start(bin, "ES256", hash, up, "")
	defer in.stop()
	subject := in.token("plain", "plain-secret")
	tokenURL := in.url(in.p.Auth, "/oauth/token")
	cc := poster(tokenURL, url.Values{"grant_type": {"client_credentials"}}, "plain", "plain-secret")
	exchange := poster(tokenURL, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {in.url(in.p.Bearer, "")}}, "orders", "orders-secret")
	ratio := alternatingRatio(scenario{"token: client_credentials ES256 secret", cc}, scenario{"token: token exchange ES256 secret", exchange})
	target("token exchange ≥ 0.8 × client_credentials", ratio >= 0.8, "%.2f× (median of 5 alternating rounds)", ratio)
}
