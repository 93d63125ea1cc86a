// Package nodetest runs the Node programs of tokengate's end-to-end tests
// (the MCP SDK client and server, pinned in test/mcp's package-lock.json,
// and oidc-provider, in test/oidc's) on the machine's node. It is the one
// place that logic lives.
package nodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tokengate/tokengate/internal/skipnote"
)

// RequireEnv, when set to 1, turns "no node" into a failure. CI sets it.
const RequireEnv = "TOKENGATE_REQUIRE_NODE"

// Dir returns the folder of the Node packages (dir holds package.json and
// node_modules), or skips the test, saying why, unless RequireEnv is set.
func Dir(t testing.TB, dir string) string {
	t.Helper()
	const group, enable = "the Node tests (the MCP SDK, oidc-provider, oauth4webapi)", "install Node.js 20 and run npm ci in test/mcp and test/oidc"
	if _, err := exec.LookPath("node"); err != nil {
		skipnote.Skip(t, RequireEnv, group, "node is not on PATH", enable)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "node_modules")); err != nil {
		skipnote.Skip(t, RequireEnv, group, "the Node packages of "+abs+" are not installed", enable)
	}
	return abs
}

// Command is node running script in dir with a clean environment (the
// everything server has a tool that prints its environment) plus env.
func Command(dir, script string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	return cmd
}
