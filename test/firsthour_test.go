package test

// The traps a new user fell into in their first hour (issue 24), each held
// where it arises.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
