// Package skipnote skips the tests whose tools this machine lacks (Redis,
// Node, Chromium), or fails them where CI requires them, and tells the
// person running go test, once per run, which groups were skipped and what
// runs them. go test shows a passing package's output only with -v, so a
// skip's message alone goes unseen; the note goes to the terminal itself.
package skipnote

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Skip skips t for want of what group needs (why), or fails it when the
// environment variable require is "1". The first skip of a group in a go
// test run also tells the terminal how to run the group (enable).
func Skip(t testing.TB, require, group, why, enable string) {
	t.Helper()
	msg := why + ": skipping " + group + " (" + enable + ")"
	if os.Getenv(require) == "1" {
		t.Fatal(msg)
	}
	tell(group, "go test: skipped "+group+": "+why+"; to run them: "+enable)
	t.Skip(msg)
}

// terminal opens the terminal go test runs in; an error where there is
// none (CI, most IDEs), which then hear nothing.
var terminal = func() (io.WriteCloser, error) { return os.OpenFile("/dev/tty", os.O_WRONLY, 0) }

// tell writes line to the terminal, once per go test run and group: the
// first package to skip the group leaves a mark, named after the go
// command (the test binaries' parent), that the others find.
func tell(group, line string) {
	mark := markOf(group)
	if fi, err := os.Stat(mark); err == nil && time.Since(fi.ModTime()) > time.Hour {
		_ = os.Remove(mark) // an earlier run's, whose go command had this PID
	}
	f, err := os.OpenFile(mark, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return // told already, or no temp dir to keep count in
	}
	f.Close()
	tty, err := terminal()
	if err != nil {
		return
	}
	defer tty.Close()
	fmt.Fprintln(tty, line)
}

// markOf is where a run notes that group's skip was told.
func markOf(group string) string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("tokengate-skipped-%d-%s", os.Getppid(), strings.ReplaceAll(group, " ", "-")))
}
