package test

// The traps a new user fell into in their first hour (issue 24), each held
// where it arises.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A store redis pointing at no server says so at start, naming the
// address (its password masked) and what to check, instead of failing
// deep in the start with a dial error. The systemd unit restarts a
// tokengate that stopped on it, for a box where Redis starts late.
func TestRedisUnreachableIsNamed(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t) // nothing listens there
	path := filepath.Join(dir, "Caddyfile")
	writeFile(t, path, `{
	admin off
	oauth2 {
		issuer http://localhost:8080
		store redis redis://:s3cret-pw@127.0.0.1:`+itoa(port)+`/0
		client svc {
			secret svc-secret
			grant client_credentials
		}
	}
}
`)
	out, err := run(t, []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir}, "validate", "--config", path, "--adapter", "caddyfile")
	if err == nil {
		t.Fatalf("validate passed with no Redis:\n%s", out)
	}
	want := "store redis: cannot reach redis://:xxxxx@127.0.0.1:" + itoa(port) + "/0"
	if !strings.Contains(out, want) || !strings.Contains(out, "is redis-server running there?") {
		t.Errorf("the error does not name the unreachable Redis (%q):\n%s", want, out)
	}
	if strings.Contains(out, "s3cret-pw") {
		t.Errorf("the error shows the Redis password:\n%s", out)
	}
	unit, err := os.ReadFile("../deploy/tokengate.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nRestart=on-failure\n") {
		t.Error("deploy/tokengate.service does not restart a tokengate that failed to start")
	}
}

// The start says what tokengate serves: the issuer, its endpoints and its
// store; and when no route hands the issuer's requests to oauth2_server
// (every endpoint would be a bare 404), it warns, naming the fix.
func TestStartSaysWhatItServes(t *testing.T) {
	t.Run("served", func(t *testing.T) {
		g := newGateway(t, Ports{})
		g.start(issuerCaddyfile)
		if !waitFor(5*time.Second, func() bool { return strings.Contains(g.log.String(), `"msg":"serving issuer `) }) {
			t.Fatalf("no start-up line:\n%s", g.log)
		}
		line := grepLines(g.log.String(), `"msg":"serving issuer `)
		for _, want := range []string{`"issuer":"` + g.AuthURL() + `"`, `"token_endpoint":"` + g.AuthURL() + `/oauth/token"`, `"store":"file `} {
			if !strings.Contains(line, want) {
				t.Errorf("the start-up line lacks %s:\n%s", want, line)
			}
		}
		if strings.Contains(g.log.String(), "no route serves the issuer") {
			t.Errorf("warned of a served issuer:\n%s", g.log)
		}
	})
	t.Run("no oauth2_server", func(t *testing.T) {
		auth := freePort(t)
		log := runSite(t, auth, `respond "the API"`)
		want := "no route serves the issuer http://127.0.0.1:" + itoa(auth) + ": its endpoints answer 404 and no token can be issued; " +
			"add oauth2_server to the site block of http://127.0.0.1:" + itoa(auth)
		if !waitFor(20*time.Second, func() bool { return strings.Contains(log.String(), want) }) {
			t.Fatalf("no warning of the unserved issuer (%q):\n%s", want, log)
		}
	})
}

// runSite runs tokengate, until the test ends, on a config whose issuer is
// http://127.0.0.1:<port> and whose one site, on that port, holds body;
// with a file store and a home of its own and no admin endpoint. It
// returns the process's log.
func runSite(t *testing.T, port int, body string) *syncBuffer {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	writeFile(t, path, `{
	admin off
	persist_config off
	oauth2 {
		issuer http://127.0.0.1:`+itoa(port)+`
		store file `+filepath.Join(dir, "tg.db")+`
	}
}
http://127.0.0.1:`+itoa(port)+` {
	`+body+`
}
`)
	cmd := exec.Command(binary, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	log := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return log
}

// Two tokengates started on the same ports, with stores of their own, both
// start (Caddy's listeners share ports), and the kernel splits requests
// between them: the second says so, naming the address. One alone says
// nothing.
func TestTwoInstancesOnOnePortAreTold(t *testing.T) {
	port := freePort(t)
	start := func() *syncBuffer {
		log := runSite(t, port, "oauth2_server")
		if !waitFor(20*time.Second, func() bool { return strings.Contains(log.String(), `"msg":"serving issuer `) }) {
			t.Fatalf("tokengate did not start:\n%s", log)
		}
		return log
	}
	const told = "another process also serves 127.0.0.1:"
	first := start()
	time.Sleep(time.Second) // its own check, alone
	if strings.Contains(first.String(), told) {
		t.Fatalf("a tokengate alone on its port was told of another:\n%s", first)
	}
	second := start()
	if !waitFor(10*time.Second, func() bool { return strings.Contains(second.String(), told+itoa(port)) }) {
		t.Fatalf("the second tokengate on port %d was not told of the first:\n%s", port, second)
	}
	if !strings.Contains(second.String(), "another tokengate (instance ") {
		t.Errorf("the error does not say the other is a tokengate:\n%s", second)
	}
}
