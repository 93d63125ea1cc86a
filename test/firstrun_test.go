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
