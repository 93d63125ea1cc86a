// Package jose is the JOSE vocabulary tokengate's signers and verifiers
// share (RFC 7518 §3.1): the signature algorithms it signs with, and those
// it accepts in what others sign.
package jose

// Asymmetric are the JWS algorithms tokengate accepts in what others sign:
// client assertions (RFC 7523), DPoP proofs (RFC 9449), other issuers'
// access tokens and login providers' ID tokens. Asymmetric only: a MAC
// with a shared secret would make a "public" key a secret, and "none"
// proves nothing.
var Asymmetric = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// Signing are the JWS algorithms tokengate signs with: its access tokens
// (signing_alg), ID tokens (a client's id_token_alg) and logout tokens.
var Signing = []string{"ES256", "EdDSA", "RS256"}
