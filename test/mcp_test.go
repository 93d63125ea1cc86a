package test

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/keytest"
	"github.com/tokengate/tokengate/internal/nodetest"
	"github.com/tokengate/tokengate/internal/persontest"
)

// An MCP server (the SDK's everything server, Streamable HTTP) behind
// bearer_auth with a resource, and tokengate as its authorization server.
const mcpCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		registration {
			open
			scope mcp mcp:admin
			client_id_metadata_documents {
				allow_private_hosts 127.0.0.1
			}
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
		client keyed {
			jwks_file {{.Dir}}/keys.json
			grant client_credentials
			scope mcp
			audience http://127.0.0.1:{{.API}}/mcp
		}
		client robot {
			secret robot-secret
			grant client_credentials
			scope mcp
			audience http://127.0.0.1:{{.API}}/mcp
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.API}} {
	bearer_auth {
		resource http://127.0.0.1:{{.API}}/mcp
		resource_name "Everything"
		scope mcp
	}
	reverse_proxy {{.Upstream}}
}
`

// startEverything runs the SDK's everything server on port, or a free
// one when port is 0.
func startEverything(t *testing.T, dir string, port int) string {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	cmd := nodetest.Command(dir, "node_modules/@modelcontextprotocol/server-everything/dist/index.js", []string{"PORT=" + itoa(port)}, "streamableHttp")
	log := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + itoa(port)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the everything server did not start:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The official MCP SDK client, unmodified, against tokengate on each
// store: (a) it meets the 401, discovers, registers itself, a person signs
// in and allows, and it lists the tools and calls one; (b) the same with a
// Client ID Metadata Document; (c) a configured client gets in with client
// credentials, and (d) with private_key_jwt; (e) the route comes to ask
// for more scope while the client is connected: its next call meets 403
// insufficient_scope and it steps up through the person.
func TestMCPSDKClient(t *testing.T) {
	dir := nodetest.Dir(t, "mcp")
	everything := startEverything(t, dir, 0)
	privateJWK, publicSet := clientKeyPair(t)
	// The client's metadata document, on an https server of its own that
	// tokengate trusts through SSL_CERT_FILE.
	var docs *httptest.Server
	docs = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"SDK by document","redirect_uris":["http://127.0.0.1:53682/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`, docs.URL+r.URL.Path)
	}))
	t.Cleanup(docs.Close)
	stores(t, func(t *testing.T, storeLine string) {
		g := newGateway(t, Ports{Upstream: everything, Store: storeLine})
		writeFile(t, g.dir+"/keys.json", publicSet)
		certFile := g.dir + "/docs-ca.pem"
		writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: docs.Certificate().Raw})))
		g.start(mcpCaddyfile, "SSL_CERT_FILE="+certFile)
		server := g.APIURL() + "/mcp"
		mark := persontest.New("mark", markPassword)
		// allow plays the person's part for an AUTHORIZE line and hands
		// the code to the client.
		allow := func(t *testing.T, stdin io.Writer, authorize string) {
			back, err := mark.Authorize(authorize)
			if err != nil {
				t.Fatalf("the person's part: %v", err)
			}
			fmt.Fprintf(stdin, "CODE %s\n", back.Query().Get("code"))
		}

		t.Run("discovery, registration, authorization code", func(t *testing.T) {
			stdin, lines, stderr := startSDKClient(t, dir, "code", server)
			result := readResult(t, lines, stderr, func(line string) {
				if u, ok := strings.CutPrefix(line, "AUTHORIZE "); ok {
					allow(t, stdin, u)
				}
			})
			if !strings.Contains(result, "hello through tokengate") || !strings.Contains(result, `"echo"`) {
				t.Fatalf("result %s", result)
			}
		})
		t.Run("client ID metadata document", func(t *testing.T) {
			stdin, lines, stderr := startSDKClient(t, dir, "cimd", server, docs.URL+"/client.json")
			result := readResult(t, lines, stderr, func(line string) {
				if u, ok := strings.CutPrefix(line, "AUTHORIZE "); ok {
					if q, _ := url.Parse(u); q.Query().Get("client_id") != docs.URL+"/client.json" {
						t.Errorf("the SDK did not use the document as its client_id: %s", u)
					}
					allow(t, stdin, u)
				}
			})
			if !strings.Contains(result, "hello through tokengate") {
				t.Fatalf("result %s", result)
			}
		})
		for name, args := range map[string][]string{
			"client credentials": {"cc", server, "robot", "robot-secret"},
			"private_key_jwt":    {"jwt", server, "keyed", privateJWK},
		} {
			t.Run(name, func(t *testing.T) { sdkClientCredentials(t, dir, args) })
		}
		t.Run("a gated tool steps up alone", func(t *testing.T) {
			gated := strings.Replace(mcpCaddyfile, "\t\tscope mcp\n\t}", "\t\tscope mcp\n\t\tmcp_tool get-env mcp:admin\n\t}", 1)
			if gated == mcpCaddyfile {
				t.Fatal("the test's config change did not apply")
			}
			g.reload(t, gated)
			defer g.reload(t, mcpCaddyfile)
			stdin, lines, stderr := startSDKClient(t, dir, "tool", server)
			var scopes []string
			echoed := false
			result := readResult(t, lines, stderr, func(line string) {
				if u, ok := strings.CutPrefix(line, "AUTHORIZE "); ok {
					q, _ := url.Parse(u)
					scopes = append(scopes, q.Query().Get("scope"))
					if len(scopes) == 2 && !echoed {
						t.Error("the client stepped up before calling the gated tool")
					}
					allow(t, stdin, u)
				}
				echoed = echoed || line == "ECHOED"
			})
			if !strings.Contains(result, "hello through tokengate") || !strings.Contains(result, `"env":[{"type":"text"`) || !strings.Contains(result, `"scope":"mcp mcp:admin"`) {
				t.Fatalf("result %s", result)
			}
			if len(scopes) != 2 || scopes[0] != "mcp" || scopes[1] != "mcp mcp:admin" {
				t.Fatalf("the client asked for %q, want mcp, then mcp mcp:admin for get-env", scopes)
			}
		})
		t.Run("step-up on 403 insufficient_scope", func(t *testing.T) {
			stepped := strings.Replace(mcpCaddyfile, "\t\tscope mcp\n\t}", "\t\tscope mcp mcp:admin\n\t}", 1)
			if stepped == mcpCaddyfile {
				t.Fatal("the test's config change did not apply")
			}
			defer g.reload(t, mcpCaddyfile)
			stdin, lines, stderr := startSDKClient(t, dir, "stepup", server)
			var scopes []string
			result := readResult(t, lines, stderr, func(line string) {
				if u, ok := strings.CutPrefix(line, "AUTHORIZE "); ok {
					q, _ := url.Parse(u)
					scopes = append(scopes, q.Query().Get("scope"))
					allow(t, stdin, u)
				}
				if line == "STEP" {
					g.reload(t, stepped)
					fmt.Fprintln(stdin, "GO")
				}
			})
			if !strings.Contains(result, "hello through tokengate") || !strings.Contains(result, `"scope":"mcp mcp:admin"`) {
				t.Fatalf("result %s", result)
			}
			if len(scopes) != 2 || scopes[0] != "mcp" || scopes[1] != "mcp mcp:admin" {
				t.Fatalf("the client asked for %q, want mcp, then mcp mcp:admin after the 403", scopes)
			}
		})
	})
}

// startSDKClient runs client.mjs with args until the test ends.
func startSDKClient(t *testing.T, dir string, args ...string) (io.Writer, *bufio.Scanner, *syncBuffer) {
	t.Helper()
	return startNodeClient(t, dir, "client.mjs", args...)
}

// startNodeClient runs a Node client script of dir until the test ends:
// its stdin, its stdout's lines, and its stderr.
func startNodeClient(t *testing.T, dir, script string, args ...string) (io.Writer, *bufio.Scanner, *syncBuffer) {
	t.Helper()
	cmd := nodetest.Command(dir, script, nil, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return stdin, bufio.NewScanner(stdout), stderr
}

// sdkClientCredentials runs the SDK client in a client-credentials mode.
func sdkClientCredentials(t *testing.T, dir string, args []string) {
	_, lines, stderr := startSDKClient(t, dir, args...)
	result := readResult(t, lines, stderr, nil)
	if !strings.Contains(result, "hello through tokengate") {
		t.Fatalf("result %s", result)
	}
}

// clientKeyPair is an ES256 key: the private JWK (for the SDK) and the
// public JWK Set (for jwks_file).
func clientKeyPair(t *testing.T) (string, string) {
	priv, set := keytest.ES256(t, "sdk")
	privJSON, err := json.Marshal(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(privJSON), string(set)
}

// readResult hands each line of the client's to on (in the test's
// goroutine, so on may fail the test), until the RESULT line, which it
// returns.
func readResult(t *testing.T, lines *bufio.Scanner, stderr *syncBuffer, on func(line string)) string {
	t.Helper()
	ch := make(chan string)
	go func() {
		defer close(ch)
		for lines.Scan() {
			ch <- lines.Text()
		}
	}()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-ch:
			if r, found := strings.CutPrefix(line, "RESULT "); found && json.Valid([]byte(r)) {
				return r
			}
			if !ok {
				t.Fatalf("the SDK client gave no result:\n%s", stderr)
			}
			if on != nil {
				on(line)
			}
		case <-timeout:
			t.Fatalf("the SDK client did not finish:\n%s", stderr)
		}
	}
}
