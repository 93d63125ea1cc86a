// panva's openid-client 6 as an independent, strict OpenID relying party for
// tokengate's end-to-end tests (test/openid_test.go drives it).
//
//   node rp.mjs <issuer> <client-id> <client-secret> <redirect-uri> <post-logout-redirect-uri>
//
// OpenID Connect Discovery (its default), then the code flow with PKCE and
// a nonce: prints "AUTHORIZE <url>" and reads "CALLBACK <url>"; the ID
// token as openid-client checks it, userinfo, a refresh; then RP-initiated
// logout: prints "LOGOUT <url>" and reads "BACK <url>". It prints
// "RESULT <json>".
import { createInterface } from "node:readline";
import * as client from "openid-client";

const [issuer, clientID, secret, redirect, postLogout] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const nextLine = (prefix) => new Promise((resolve) => lines.once("line", (l) => resolve(l.replace(prefix, ""))));

// Plain http is for the tests' loopback servers only.
const config = await client.discovery(new URL(issuer), clientID, secret, undefined, { execute: [client.allowInsecureRequests] });
const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirect, scope: "openid profile email offline_access", nonce, state,
  code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
});
console.log("AUTHORIZE " + url.href);
const callback = new URL(await nextLine("CALLBACK "));
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const logoutState = client.randomState();
console.log("LOGOUT " + client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token, post_logout_redirect_uri: postLogout, state: logoutState,
}).href);
const back = new URL(await nextLine("BACK "));
console.log("RESULT " + JSON.stringify({
  claims, userinfo, refreshed: refreshed.claims(), back_to: back.origin + back.pathname,
  logout_state: back.searchParams.get("state") === logoutState,
}));
process.exit(0);
