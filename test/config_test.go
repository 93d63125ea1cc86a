package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bad configuration fails `tokengate adapt` with a message naming the
// directive and the problem.
func TestConfigErrors(t *testing.T) {
	const hash = "$2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe"
	wrap := func(body string) string {
		return "{\n\toauth2 {\n" + body + "\n\t}\n}\nhttp://127.0.0.1:9 {\n\toauth2_server\n}\n"
	}
	const iss = "\t\tissuer https://auth.example.com\n"
	tests := []struct {
		name, caddyfile, want string
	}{
		{"missing issuer", wrap("\t\tsigning_alg ES256"), "issuer is required"},
		{"issuer not absolute", wrap("\t\tissuer auth.example.com"), "absolute URL"},
		{"issuer over plain http", wrap("\t\tissuer http://auth.example.com"), "must use https"},
		{"unknown grant", wrap(iss + "\t\tclient a {\n\t\t\tsecret x\n\t\t\tgrant password\n\t\t}"), `unknown grant "password"`},
		{"relative redirect URI", wrap(iss + "\t\tclient a {\n\t\t\tgrant authorization_code\n\t\t\tredirect_uri /callback\n\t\t}"), "absolute URI"},
		{"public client with client_credentials", wrap(iss + "\t\tclient a {\n\t\t\tgrant client_credentials\n\t\t}"), "client_credentials needs a confidential client"},
		{"secret and secret_hash", wrap(iss + "\t\tclient a {\n\t\t\tsecret x\n\t\t\tsecret_hash " + hash + "\n\t\t\tgrant client_credentials\n\t\t}"), "not both"},
		{"secret_hash not bcrypt", wrap(iss + "\t\tclient a {\n\t\t\tsecret_hash plain\n\t\t\tgrant client_credentials\n\t\t}"), "not a bcrypt hash"},
		{"client without grant", wrap(iss + "\t\tclient a {\n\t\t\tsecret x\n\t\t}"), "no grant"},
		{"unknown client option", wrap(iss + "\t\tclient a {\n\t\t\tcolour blue\n\t\t}"), `unknown option "colour"`},
		{"client defined twice", wrap(iss + "\t\tclient a {\n\t\t\tsecret x\n\t\t\tgrant client_credentials\n\t\t}\n\t\tclient a {\n\t\t\tsecret y\n\t\t\tgrant client_credentials\n\t\t}"), "defined twice"},
		{"bad signing_alg", wrap(iss + "\t\tsigning_alg HS256"), `signing_alg "HS256" is not supported`},
		{"bad duration", wrap(iss + "\t\taccess_token_ttl forever"), "access_token_ttl"},
		{"device interval not whole seconds", wrap(iss + "\t\tdevice_interval 1500ms"), "device_interval 1.5s must be whole seconds"},
		{"unknown store", wrap(iss + "\t\tstore postgres"), `store "postgres" is not known`},
		{"redis store without address", wrap(iss + "\t\tstore redis {\n\t\t\tprefix x:\n\t\t}"), "no address"},
		{"redis prefix with a hash tag", wrap(iss + "\t\tstore redis {\n\t\t\taddress redis://127.0.0.1:6379\n\t\t\tprefix {tg}:\n\t\t}"), "must not contain { or }"},
		{"bad key_rotation", wrap(iss + "\t\tkey_rotation monthly"), "key_rotation"},
		{"user with a plain password", wrap(iss + "\t\tuser mark hunter2"), "bcrypt hash"},
		{"user with bad email", wrap(iss + "\t\tuser mark " + hash + " {\n\t\t\temail nope\n\t\t}"), "not an email address"},
		{"unknown option", wrap(iss + "\t\tcolour blue"), `unknown oauth2 option "colour"`},
		{"javascript: redirect URI", wrap(iss + "\t\tclient evil {\n\t\t\tgrant authorization_code\n\t\t\tredirect_uri javascript:alert(document.domain)//\n\t\t}"), `client evil: redirect_uri "javascript:alert(document.domain)//": the javascript: scheme`},
		{"data: redirect URI", wrap(iss + "\t\tclient evil {\n\t\t\tgrant authorization_code\n\t\t\tredirect_uri data:text/html,hi\n\t\t}"), "client evil: redirect_uri"},
		{"private-use scheme without a dot", wrap(iss + "\t\tclient app {\n\t\t\tgrant authorization_code\n\t\t\tredirect_uri myapp:/callback\n\t\t}"), "reverse domain name"},
		{"client ID equal to a username", wrap(iss + "\t\tclient alice {\n\t\t\tsecret x\n\t\t\tgrant client_credentials\n\t\t}\n\t\tuser alice " + hash), "client alice has the same name as user alice"},
		{"jwks_file missing", wrap(iss + "\t\tclient k {\n\t\t\tjwks_file /nonexistent/keys.json\n\t\t\tgrant client_credentials\n\t\t}"), "client k: reading the key set"},
		{"jwks_uri over plain http", wrap(iss + "\t\tclient k {\n\t\t\tjwks_uri http://keys.example.com/jwks.json\n\t\t\tgrant client_credentials\n\t\t}"), "client k: jwks_uri: \"http://keys.example.com/jwks.json\" must use https"},
		{"jwks_uri and a secret", wrap(iss + "\t\tclient k {\n\t\t\tjwks_uri https://keys.example.com/jwks.json\n\t\t\tsecret x\n\t\t\tgrant client_credentials\n\t\t}"), "keys (jwks_file or jwks_uri) or a secret, not both"},
		{"trust without audience", wrap(iss + "\t\ttrust https://sso.example.com {\n\t\t\tscope_claim scp\n\t\t}"), "trust https://sso.example.com: audience is required"},
		{"trust over plain http", wrap(iss + "\t\ttrust http://sso.example.com {\n\t\t\taudience api\n\t\t}"), "must use https"},
		{"trust introspection without secret", wrap(iss + "\t\ttrust https://sso.example.com {\n\t\t\taudience api\n\t\t\tintrospection {\n\t\t\t\tclient_id gw\n\t\t\t}\n\t\t}"), "introspection needs client_id and client_secret"},
		{"trust unknown option", wrap(iss + "\t\ttrust https://sso.example.com {\n\t\t\taudience api\n\t\t\tkeys x\n\t\t}"), `unknown option "keys"`},
		{"registration without scope", wrap(iss + "\t\tregistration {\n\t\t\topen\n\t\t}"), "registration: scope is required"},
		{"registration open and with a token", wrap(iss + "\t\tregistration {\n\t\t\topen\n\t\t\tinitial_access_token x\n\t\t\tscope read\n\t\t}"), "open or initial_access_token, not both"},
		{"registration for nobody", wrap(iss + "\t\tregistration {\n\t\t\tscope read\n\t\t}"), "say who may register"},
		{"registration budget not a number", wrap(iss + "\t\tregistration {\n\t\t\topen\n\t\t\tscope read\n\t\t\tmax_clients many\n\t\t}"), `max_clients "many" is not a positive number`},
		{"unused_client_ttl not a duration", wrap(iss + "\t\tregistration {\n\t\t\topen\n\t\t\tscope read\n\t\t\tunused_client_ttl soon\n\t\t}"), `registration: unused_client_ttl: "soon" is not a positive duration`},
		{"resource not canonical", "{\n\toauth2 {\n" + iss + "\t}\n}\nhttp://127.0.0.1:9 {\n\tbearer_auth {\n\t\tresource https://MCP.example.com/mcp\n\t}\n}\n", "scheme and host in lower case"},
		{"resource with a query", "{\n\toauth2 {\n" + iss + "\t}\n}\nhttp://127.0.0.1:9 {\n\tbearer_auth {\n\t\tresource https://mcp.example.com/mcp?v=1\n\t}\n}\n", "must not have a query"},
		{"login_provider with discovery and endpoints", wrap(iss + "\t\tlogin_provider corp {\n\t\t\tissuer https://idp.example.com\n\t\t\tauthorization_url https://idp.example.com/authorize\n\t\t\tclient_id tg\n\t\t\tclient_secret s\n\t\t}"), "not both"},
		{"login_provider without its secret", wrap(iss + "\t\tlogin_provider corp {\n\t\t\tissuer https://idp.example.com\n\t\t\tclient_id tg\n\t\t}"), "client_id and client_secret are required"},
		{"login_provider scope without openid", wrap(iss + "\t\tlogin_provider corp {\n\t\t\tissuer https://idp.example.com\n\t\t\tclient_id tg\n\t\t\tclient_secret s\n\t\t\tscope email\n\t\t}"), "scope must include openid"},
		{"bearer_auth unknown option", "{\n\toauth2 {\n" + iss + "\t}\n}\nhttp://127.0.0.1:9 {\n\tbearer_auth {\n\t\tcolour blue\n\t}\n}\n", `bearer_auth: unknown option "colour"`},
		// The first hour's slips: a misspelt option is named, and a block
		// left open is pointed at, not only the directive after it.
		{"bearer_auth option misspelt", "{\n\toauth2 {\n" + iss + "\t}\n}\nhttp://127.0.0.1:9 {\n\tbearer_auth {\n\t\tscopes read\n\t}\n}\n", `did you mean scope?`},
		{"bearer_auth left open", "{\n\toauth2 {\n" + iss + "\t}\n}\nhttp://127.0.0.1:9 {\n\tbearer_auth {\n\t\tscope read\n\trespond ok\n}\n",
			`if respond belongs after the bearer_auth block, its closing } is missing above this line`},
		{"client left open", wrap(iss + "\t\tclient a {\n\t\t\tsecret x\n\t\t\tgrant client_credentials\n\t\tuser mark " + hash),
			`if user belongs after the client a block, its closing } is missing above this line`},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "Caddyfile"+itoa(i))
			writeFile(t, path, tc.caddyfile)
			out, err := run(t, nil, "adapt", "--config", path, "--adapter", "caddyfile")
			out = strings.ReplaceAll(out, `\"`, `"`) // Caddy logs the message as JSON
			if err == nil {
				t.Fatalf("adapt accepted:\n%s\n%s", tc.caddyfile, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("adapt said:\n%s\nwant it to mention %q", out, tc.want)
			}
			if !strings.Contains(out, "Caddyfile"+itoa(i)+":") {
				t.Errorf("the message does not name the file and line:\n%s", out)
			}
		})
	}
}

// The example Caddyfile adapts, and a valid config with every option does too.
func TestExampleCaddyfileAdapts(t *testing.T) {
	out, err := run(t, nil, "adapt", "--config", "../Caddyfile.example", "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{`"oauth2"`, `"issuer":"http://localhost:8080"`, `"handler":"bearer_auth"`, `"handler":"oauth2_server"`, `"module":"file"`,
		`"host":["localhost","127.0.0.1"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
}

// The shipped example is as `tokengate fmt` writes it: no warning at start.
func TestExampleCaddyfileIsFormatted(t *testing.T) {
	want, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "fmt", "../Caddyfile.example")
	got, err := cmd.Output()
	if err != nil || string(got) != string(want) {
		t.Fatalf("tokengate fmt Caddyfile.example changes it (%v): run tokengate fmt --overwrite Caddyfile.example", err)
	}
}

// A secret from an unset environment variable stops the start with a clear
// message rather than making a client with an empty secret.
func TestEmptyEnvSecretRefused(t *testing.T) {
	g := newGateway(t, Ports{Upstream: "127.0.0.1:9"})
	path := filepath.Join(g.dir, "Caddyfile")
	writeFile(t, path, render(t, gatewayCaddyfile, g.Ports))
	out, err := run(t, []string{"WRITER_SECRET=", "XDG_DATA_HOME=" + g.dir}, "validate", "--config", path, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "is the environment variable set?") {
		t.Fatalf("validate with WRITER_SECRET unset: %v\n%s", err, out)
	}
}

// A problem found once a block is read is reported at the line of the
// directive that caused it, not at the block's closing brace.
func TestConfigErrorLines(t *testing.T) {
	const hash = "$2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe"
	tests := []struct {
		name, body, want string
	}{
		{"relative redirect URI", "\t\tissuer https://auth.example.com\n\t\tclient a {\n\t\t\tgrant authorization_code\n\t\t\tredirect_uri https://a.example/cb\n\t\t\tredirect_uri /callback\n\t\t\tname A\n\t\t}", "redirect_uri /callback"},
		{"public client with client_credentials", "\t\tissuer https://auth.example.com\n\t\tclient a {\n\t\t\tgrant client_credentials\n\t\t\tname A\n\t\t}", "grant client_credentials"},
		{"bad secret_hash", "\t\tissuer https://auth.example.com\n\t\tclient a {\n\t\t\tsecret_hash nope\n\t\t\tgrant client_credentials\n\t\t}", "secret_hash nope"},
		{"missing issuer", "\t\tsigning_alg ES256\n\t\tuser mark " + hash, "oauth2 {"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caddyfile := "{\n\toauth2 {\n" + tc.body + "\n\t}\n}\nhttp://127.0.0.1:9 {\n\toauth2_server\n}\n"
			line := 0
			for n, l := range strings.Split(caddyfile, "\n") {
				if strings.Contains(l, tc.want) {
					line = n + 1
				}
			}
			path := filepath.Join(dir, "Caddyfile"+itoa(i))
			writeFile(t, path, caddyfile)
			out, err := run(t, nil, "adapt", "--config", path, "--adapter", "caddyfile")
			if err == nil || !strings.Contains(out, "Caddyfile"+itoa(i)+":"+itoa(line)) {
				t.Fatalf("want the error at line %d (%s):\n%s", line, tc.want, out)
			}
		})
	}
}

// A JSON config meets the same registration rule as a Caddyfile: open or
// an initial access token, not both (it used to pass JSON unchecked).
func TestJSONConfigRegistrationRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"apps":{"oauth2":{"issuer":"https://auth.example.com","registration":{"open":true,"initial_access_token":"x","scope":"read"}}}}`)
	out, err := run(t, nil, "validate", "--config", path)
	if err == nil || !strings.Contains(out, "registration: give open or initial_access_token, not both") {
		t.Fatalf("validate (%v):\n%s", err, out)
	}
}
