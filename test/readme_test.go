package test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's walk-through works verbatim against Caddyfile.example: its
// commands run in one shell, in order, and every line of every answer it
// shows (except elided tokens) appears in what they print.
func TestReadmeWalkthrough(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:9000", "127.0.0.1:2019"} {
		if l, err := net.Listen("tcp", addr); err != nil {
			t.Skipf("the example's port %s is busy here: %v", addr, err)
		} else {
			l.Close()
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "<!-- walkthrough -->")
	section, _, ok2 := strings.Cut(section, "<!-- /walkthrough -->")
	if !ok || !ok2 {
		t.Fatal("README has no walkthrough markers")
	}
	var script strings.Builder
	var expected []string
	blocks := regexp.MustCompile("(?s)```(\\w*)\n(.*?)```").FindAllStringSubmatch(section, -1)
	for i, b := range blocks {
		lang, body := b[1], b[2]
		if lang == "sh" {
			script.WriteString(body)
			script.WriteString("echo\n")
			continue
		}
		if i == 0 || blocks[i-1][1] != "sh" {
			continue // not the answer to a command
		}
		for _, line := range strings.Split(body, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "…") {
				expected = append(expected, line)
			}
		}
	}
	if len(expected) < 5 {
		t.Fatalf("found only %d expected lines in the walkthrough", len(expected))
	}

	dir := t.TempDir()
	cmd := exec.Command(binary, "run", "--config", "../Caddyfile.example")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	log := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:8081")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not come up:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	sh := exec.Command("bash", "-euo", "pipefail", "-c", script.String())
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s\n--- script:\n%s", err, out, script.String())
	}
	got := strings.ToLower(strings.ReplaceAll(string(out), "\r", ""))
	for _, line := range expected {
		if !strings.Contains(got, strings.ToLower(line)) {
			t.Errorf("the README shows %q, the commands printed:\n%s", line, out)
		}
	}
}
