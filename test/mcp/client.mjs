// The official MCP TypeScript SDK client against tokengate, for
// tokengate's end-to-end tests (test/mcp_test.go drives it).
//
//   node client.mjs code <server-url>   discovery, dynamic registration,
//       authorization code + PKCE: prints "AUTHORIZE <url>", reads
//       "CODE <code>" from stdin, then lists tools and calls echo
//   node client.mjs cimd <server-url> <metadata-document-url>
//       as code, with a Client ID Metadata Document instead of registering
//   node client.mjs stepup <server-url>
//       as code, without refresh tokens; after listing the tools it prints
//       "STEP" and waits for "GO" (the test makes the route ask for more
//       scope meanwhile), then calls echo: the 403 insufficient_scope sends
//       it through authorization again ("AUTHORIZE", "CODE") for the wider
//       scope, and it calls echo again. (SDK 1.x refreshes instead of
//       re-authorizing when it holds a refresh token, typescript-sdk#2255,
//       so this client registers for authorization_code alone.)
//   node client.mjs tool <server-url>
//       as stepup, without the pause: it calls echo (prints "ECHOED"), then
//       get-env, a tool the route gates with more scope: the 403
//       insufficient_scope sends it through authorization again for that
//       tool alone, and it calls get-env again
//   node client.mjs cc <server-url> <client-id> <secret>
//       client credentials (ClientCredentialsProvider)
//   node client.mjs jwt <server-url> <client-id> <private JWK as JSON>
//       client credentials with private_key_jwt (PrivateKeyJwtProvider)
//
// It prints "RESULT <json>" on success and exits 0.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";

const [mode, serverUrl, ...rest] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));

// An in-memory OAuthClientProvider for a person-facing client.
class MemoryProvider {
  constructor(clientMetadataUrl, grantTypes = ["authorization_code", "refresh_token"]) {
    this.info = undefined; this.saved = undefined; this.verifier = ""; this.grantTypes = grantTypes;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
  }
  get redirectUrl() { return "http://127.0.0.1:53682/callback"; }
  get clientMetadata() {
    return { client_name: "MCP SDK e2e", redirect_uris: [this.redirectUrl], grant_types: this.grantTypes,
      response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  redirectToAuthorization(url) { console.log("AUTHORIZE " + url.toString()); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

// retryingFetch sends a request once more when the connection it went out
// on was closed before any answer came back, as browsers do for a reused
// keep-alive connection. A config reload (the step-up case) closes the old
// servers' connections, and Node's fetch does not retry a POST itself.
async function retryingFetch(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (err?.cause?.code !== "UND_ERR_SOCKET" || err.cause.socket?.bytesRead !== 0) throw err;
    return fetch(url, init);
  }
}

async function session(provider) {
  const client = new Client({ name: "tokengate-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: retryingFetch });
  try {
    await client.connect(transport);
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || !provider.redirectUrl) throw err;
    await finishAuth(transport);
    return session(provider);
  }
  return { client, transport };
}

// finishAuth takes the code the person's browser came back with.
async function finishAuth(transport) {
  const line = await nextLine();
  await transport.finishAuth(line.replace(/^CODE /, ""));
}

// echo calls the echo tool; a step-up sends the person through
// authorization once more, after which the call is made again.
async function echo(client, transport) {
  return stepUp(transport, () => client.callTool({ name: "echo", arguments: { message: "hello through tokengate" } }));
}

// stepUp makes a call; when it meets a step-up, the person authorizes
// once more and the call is made again.
async function stepUp(transport, call) {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    await finishAuth(transport);
    return call();
  }
}

const provider = mode === "cc"
  ? new ClientCredentialsProvider({ clientId: rest[0], clientSecret: rest[1] })
  : mode === "jwt"
    ? new PrivateKeyJwtProvider({ clientId: rest[0], privateKey: JSON.parse(rest[1]), algorithm: "ES256" })
    : mode === "stepup" || mode === "tool"
      ? new MemoryProvider(undefined, ["authorization_code"])
      : new MemoryProvider(mode === "cimd" ? rest[0] : undefined);
const { client, transport } = await session(provider);
const tools = await client.listTools();
if (mode === "stepup") {
  console.log("STEP");
  await nextLine();
}
const echoed = await echo(client, transport);
let env;
if (mode === "tool") {
  console.log("ECHOED");
  env = (await stepUp(transport, () => client.callTool({ name: "get-env", arguments: {} }))).content;
}
console.log("RESULT " + JSON.stringify({ tools: tools.tools.map((t) => t.name), echo: echoed.content, env, scope: provider.saved?.scope }));
await client.close();
process.exit(0);
