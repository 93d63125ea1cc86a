package test

import (
	"strings"
	"testing"
)

// The binary speaks as tokengate: its usage, description and version.
func TestCLIIsTokengate(t *testing.T) {
	out, err := run(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "tokengate ") || !strings.Contains(out, " on Caddy v2.") {
		t.Errorf("tokengate version: %v\n%s", err, out)
	}
	out, _ = run(t, nil, "oauth2", "--help")
	if !strings.Contains(out, "Usage:\n  tokengate oauth2 [command]") || strings.Contains(out, "caddy oauth2") {
		t.Errorf("tokengate oauth2 --help:\n%s", out)
	}
	out, _ = run(t, nil, "--help")
	if !strings.HasPrefix(out, "tokengate is an OAuth 2.0 authorization server") {
		t.Errorf("tokengate --help opens with:\n%.300s", out)
	}
}

// With nothing running, the CLI says so and how to point it elsewhere.
func TestCLIWithNothingRunning(t *testing.T) {
	addr := "127.0.0.1:" + itoa(freePort(t))
	out, err := run(t, nil, "oauth2", "client", "list", "--address", addr)
	if err == nil || !strings.Contains(out, "no tokengate answers at the admin address "+addr) || !strings.Contains(out, "--address") {
		t.Errorf("client list with nothing running: %v\n%s", err, out)
	}
	if strings.Contains(out, "dial tcp") {
		t.Errorf("the message still shows the dial error:\n%s", out)
	}
}

// firstError is the first error line a tokengate run printed.
func firstError(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.HasPrefix(line, "Error:") {
			return strings.ReplaceAll(line, `\"`, `"`) // the log is JSON
		}
	}
	return ""
}

// A second instance on the same file store, or a secret from an unset
// environment variable: the first error says the cause and the fix, and
// nothing claims the oauth2 app is missing.
func TestStartupErrorsSayTheCauseFirst(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, up, "store file")
	second := newGateway(t, Ports{Upstream: up.Addr(), Dir: g.dir})
	path := g.dir + "/Caddyfile.second"
	writeFile(t, path, render(t, gatewayCaddyfile, second.Ports))
	env := []string{"WRITER_SECRET=" + writerSecret, "HOME=" + g.dir, "XDG_DATA_HOME=" + g.dir + "/data", "XDG_CONFIG_HOME=" + g.dir + "/config"}
	out, err := run(t, env, "run", "--config", path, "--adapter", "caddyfile")
	first := firstError(out)
	if err == nil || !strings.Contains(first, "is in use by another process, most likely another tokengate: stop it") {
		t.Errorf("second instance on one file: %v; first error:\n%s\n\nall:\n%s", err, first, out)
	}
	if strings.Contains(out, "the oauth2 app is needed") {
		t.Errorf("a handler claims the oauth2 app is missing:\n%s", out)
	}

	env[0] = "WRITER_SECRET="
	out, err = run(t, env, "run", "--config", path, "--adapter", "caddyfile")
	first = firstError(out)
	if err == nil || !strings.Contains(first, `client writer: secret "{env.WRITER_SECRET}" is empty once placeholders are replaced: is the environment variable set?`) {
		t.Errorf("unset secret: %v; first error:\n%s\n\nall:\n%s", err, first, out)
	}
	if strings.Contains(out, "the oauth2 app is needed") {
		t.Errorf("a handler claims the oauth2 app is missing:\n%s", out)
	}
}
