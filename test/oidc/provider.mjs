// panva's oidc-provider as an independent OpenID provider for tokengate's
// end-to-end tests (test/oidc_test.go drives it).
//
//   node provider.mjs <port>
//
// Environment: KEY_ID names its ES256 signing key (a new one each start,
// so a restart with another KEY_ID is a key rotation); RP_REDIRECT is the
// redirect URIs (space-separated) of the relying party client "tokengate",
// RP_BACKCHANNEL its backchannel_logout_uri and RP_POST_LOGOUT its
// post_logout_redirect_uri, when given.
//
// Clients: robot / robot-secret (client credentials), gateway / gw-secret
// (introspection), tokengate / rp-secret (authorization code, the relying
// party). Resources: https://api.example.com and https://other.example.com
// get JWT access tokens for themselves, https://opaque.example.com opaque
// ones (audience https://api.example.com), introspectable. Every account exists (dev interactions: any login); its
// claims come from its name, see findAccount.
import { generateKeyPairSync } from "node:crypto";
import Provider, { errors } from "oidc-provider";

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: process.env.KEY_ID || "key-1", alg: "ES256", use: "sig" };

const clients = [
  { client_id: "robot", client_secret: "robot-secret", grant_types: ["client_credentials"], redirect_uris: [], response_types: [] },
  { client_id: "gateway", client_secret: "gw-secret", grant_types: [], redirect_uris: [], response_types: [] },
];
if (process.env.RP_REDIRECT) {
  const rp = { client_id: "tokengate", client_secret: "rp-secret", grant_types: ["authorization_code"],
    redirect_uris: process.env.RP_REDIRECT.split(" "), response_types: ["code"] };
  if (process.env.RP_BACKCHANNEL) rp.backchannel_logout_uri = process.env.RP_BACKCHANNEL;
  if (process.env.RP_POST_LOGOUT) rp.post_logout_redirect_uris = [process.env.RP_POST_LOGOUT];
  clients.push(rp);
}

// The only key is ES256, so every client's ID tokens are.
for (const c of clients) c.id_token_signed_response_alg = "ES256";

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  scopes: ["openid", "email", "profile", "read", "write"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "groups"] },
  // "mark@example.com" signs in as sub mark with that email, verified;
  // a name with "unverified" gets email_verified false; groups: eng, and
  // ops for names with "ops".
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        const email = sub.includes("@") ? sub : `${sub}@example.com`;
        return { sub, email, email_verified: !sub.includes("unverified"), name: sub, groups: sub.includes("ops") ? ["eng", "ops"] : ["eng"] };
      },
    };
  },
  extraTokenClaims: async () => ({ groups: ["eng", "ops"], email: "robot@example.com" }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "https://api.example.com",
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource === "https://api.example.com") {
          return { scope: "read write", audience: "https://api.example.com", accessTokenFormat: "jwt", accessTokenTTL: 3600, jwt: { sign: { alg: "ES256" } } };
        }
        if (resource === "https://other.example.com") {
          return { scope: "read write", audience: "https://other.example.com", accessTokenFormat: "jwt", accessTokenTTL: 3600, jwt: { sign: { alg: "ES256" } } };
        }
        if (resource === "https://opaque.example.com") {
          return { scope: "read write", audience: "https://api.example.com", accessTokenFormat: "opaque", accessTokenTTL: 3600 };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
  pkce: { required: () => true },
  // Its outgoing requests (back-channel logouts) go to the test's
  // servers on loopback, which its SSRF guard would refuse.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  ttl: { AccessToken: 3600, ClientCredentials: 3600 },
});
provider.proxy = false;
provider.on("backchannel.error", (ctx, err) => console.error("backchannel.error", err.message));
provider.on("backchannel.success", () => console.error("backchannel.success"));
provider.listen(port, "127.0.0.1", () => console.log("READY " + issuer));
