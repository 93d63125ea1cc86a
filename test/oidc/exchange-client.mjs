// panva's oauth4webapi as an independent RFC 8693 client for tokengate's
// end-to-end tests (test/token_exchange_test.go drives it).
//
//   node exchange-client.mjs <issuer> <client-id> <secret> <subject-token> <resource>
//
// OpenID discovery, then genericTokenEndpointRequest (its generic grant
// request) for the token-exchange grant;
// it prints "RESULT <json>" with the answer as oauth4webapi checked it.
import * as oauth from "oauth4webapi";

const [issuerArg, clientID, secret, subjectToken, resource] = process.argv.slice(2);
const issuer = new URL(issuerArg);
const insecure = { [oauth.allowInsecureRequests]: true }; // the tests' servers are plain http on loopback
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
const client = { client_id: clientID };
const response = await oauth.genericTokenEndpointRequest(as, client, oauth.ClientSecretBasic(secret), "urn:ietf:params:oauth:grant-type:token-exchange",
  new URLSearchParams({ subject_token: subjectToken, subject_token_type: "urn:ietf:params:oauth:token-type:access_token", resource }), insecure);
const result = await oauth.processGenericTokenEndpointResponse(as, client, response);
console.log("RESULT " + JSON.stringify(result));
