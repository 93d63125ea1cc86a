// panva's oauth4webapi as an independent DPoP client for tokengate's
// end-to-end tests (test/oidc_test.go drives it).
//
//   node dpop-client.mjs cc <issuer> <api-url> <client-id> <secret>
//       client credentials with DPoP, then a protected resource request
//   node dpop-client.mjs code <issuer> <api-url> <client-id>
//       authorization code + PKCE with DPoP for a public client: prints
//       "AUTHORIZE <url>", reads "CALLBACK <url>" from stdin; then the API,
//       a refresh with DPoP, and the API again
//
// Both retry once on use_dpop_nonce, as RFC 9449 §8 and §9 ask of clients;
// oauth4webapi keeps the nonce it was given. It prints "RESULT <json>".
import { createInterface } from "node:readline";
import * as oauth from "oauth4webapi";

const [mode, issuerArg, apiArg, clientID, secret] = process.argv.slice(2);
const issuer = new URL(issuerArg);
const insecure = { [oauth.allowInsecureRequests]: true }; // the tests' servers are plain http on loopback
// oauth4webapi's default discovery: OpenID Connect's.
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
const client = { client_id: clientID };
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
const opts = { DPoP, ...insecure };

// once retries a request once when the server asks for a nonce.
async function once(fn) {
  try {
    return await fn();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return fn();
  }
}

// callAPI calls the API through the gateway; a challenge (a 401 or 403
// with WWW-Authenticate) throws, so only a nonce request is retried.
async function callAPI(token) {
  return once(async () => {
    const res = await oauth.protectedResourceRequest(token, "GET", new URL(apiArg), undefined, undefined, opts);
    return { status: res.status, body: await res.text() };
  });
}

let result;
if (mode === "cc") {
  const auth = oauth.ClientSecretBasic(secret);
  const tokens = await once(async () => oauth.processClientCredentialsResponse(as, client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: "read" }), opts)));
  result = { token_type: tokens.token_type, api: await callAPI(tokens.access_token) };
} else {
  const lines = createInterface({ input: process.stdin });
  const nextLine = () => new Promise((resolve) => lines.once("line", resolve));
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const redirect = "http://127.0.0.1/callback";
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({ response_type: "code", client_id: clientID, redirect_uri: redirect, scope: "read", state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" }).toString();
  console.log("AUTHORIZE " + url);
  const callback = new URL((await nextLine()).replace(/^CALLBACK /, ""));
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const auth = oauth.None();
  const tokens = await once(async () => oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirect, verifier, opts)));
  const first = await callAPI(tokens.access_token);
  const refreshed = await once(async () => oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, opts)));
  result = { token_type: tokens.token_type, refreshed_type: refreshed.token_type, api: first, again: await callAPI(refreshed.access_token) };
}
console.log("RESULT " + JSON.stringify(result));
process.exit(0);
