// Package test holds end-to-end tests: they build the real tokengate
// binary, run it on free loopback ports with a temporary Caddyfile, and
// drive it the way users and standard OAuth clients do.
package test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	// The binary under test is built from these packages in a subprocess,
	// which Go's test cache cannot see: importing them makes a change to
	// them invalidate cached results of this package.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/tokengate/tokengate/caddymodule"
	"github.com/tokengate/tokengate/internal/freeport"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokengate-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokengate")
	build := exec.Command("go", "build", "-o", binary, "../cmd/tokengate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tokengate:", err)
		os.Exit(1)
	}
	// Likewise for the example the tests run: reading it here records it.
	if _, err := os.ReadFile("../Caddyfile.example"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a free loopback port for a server the test starts
// (freeport: never handed out twice, and out of the ephemeral range,
// where an outgoing connection could take it before the server binds it).
func freePort(t testing.TB) int {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Ports and paths a Caddyfile template can use.
type Ports struct {
	Admin, Auth, API int
	Upstream         string // host:port of the recording upstream
	Dir              string // the instance's own directory
	Redis            string // redis URL, when the test has one
	Store            string // the store directive line
	Issuer           string // default http://127.0.0.1:<Auth>
}

// gateway is one running tokengate process.
type gateway struct {
	t      *testing.T
	Ports  Ports
	dir    string
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	env    []string
}

// AuthURL is the issuer and authorization server base URL.
func (g *gateway) AuthURL() string { return fmt.Sprintf("http://127.0.0.1:%d", g.Ports.Auth) }

// APIURL is the bearer_auth-protected site.
func (g *gateway) APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", g.Ports.API) }

// render fills a Caddyfile template.
func render(t *testing.T, tmpl string, p Ports) string {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("Caddyfile").Parse(tmpl)).Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// newGateway prepares (but does not start) an instance with its own ports
// and directory; dir may be shared to restart "the same" instance.
func newGateway(t *testing.T, ports Ports) *gateway {
	t.Helper()
	if ports.Dir == "" {
		ports.Dir = t.TempDir()
	}
	if ports.Admin == 0 {
		ports.Admin, ports.Auth, ports.API = freePort(t), freePort(t), freePort(t)
	}
	if ports.Issuer == "" {
		ports.Issuer = fmt.Sprintf("http://127.0.0.1:%d", ports.Auth)
	}
	if ports.Store == "" {
		ports.Store = "store file"
	}
	return &gateway{t: t, Ports: ports, dir: ports.Dir}
}

// start runs the binary on the rendered Caddyfile and waits until the
// authorization server answers.
func (g *gateway) start(tmpl string, env ...string) {
	t := g.t
	t.Helper()
	cfg := filepath.Join(g.dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(render(t, tmpl, g.Ports)), 0o600); err != nil {
		t.Fatal(err)
	}
	g.log = new(syncBuffer)
	g.exited = make(chan struct{})
	g.cmd = exec.Command(binary, "run", "--config", cfg, "--adapter", "caddyfile")
	g.env = append(os.Environ(), "HOME="+g.dir, "XDG_DATA_HOME="+filepath.Join(g.dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(g.dir, "config"))
	g.cmd.Env = append(g.env, env...)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(g.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-g.exited:
			t.Fatalf("tokengate exited during start-up:\n%s", g.log)
		default:
		}
		resp, err := http.Get(g.AuthURL() + "/.well-known/oauth-authorization-server")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tokengate did not come up: %v\n%s", err, g.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reload renders tmpl and loads it into the running instance, as an
// operator's `tokengate reload` does; env is the reload command's own.
func (g *gateway) reload(t *testing.T, tmpl string, env ...string) {
	t.Helper()
	cfg := filepath.Join(g.dir, "Caddyfile.reloaded")
	writeFile(t, cfg, render(t, tmpl, g.Ports))
	if out, err := run(t, env, "reload", "--config", cfg, "--adapter", "caddyfile", "--address", "127.0.0.1:"+itoa(g.Ports.Admin)); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
}

// stop ends the process gracefully (as systemd would) and waits for it.
func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// run runs a tokengate subcommand and returns its combined output.
func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// upstream is the API behind the gateway; it records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"user":%q}`, r.URL.Path, r.Header.Get("X-User"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) Addr() string { return strings.TrimPrefix(u.URL, "http://") }

// through GETs url with a bearer token and returns the status and the
// request the upstream saw, nil when none reached it.
func (u *upstream) through(t *testing.T, url, token string) (int, *http.Request) {
	t.Helper()
	before := len(u.seen())
	resp, _ := get(t, http.DefaultClient, "GET", url, "Authorization", "Bearer "+token)
	if seen := u.seen(); len(seen) > before {
		return resp.StatusCode, seen[len(seen)-1]
	}
	return resp.StatusCode, nil
}

// seen returns the requests that reached the upstream.
func (u *upstream) seen() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// decodeClaims returns a JWT's claims without verifying anything.
func decodeClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
