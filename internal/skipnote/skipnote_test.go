package skipnote

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// A group's note reaches the terminal once per run, however many tests
// of however many packages skip it; another group gets its own.
func TestToldOncePerGroup(t *testing.T) {
	var out bytes.Buffer
	was := terminal
	terminal = func() (io.WriteCloser, error) { return nopCloser{&out}, nil }
	t.Cleanup(func() { terminal = was })
	group := "test-group-" + t.Name()
	t.Cleanup(func() {
		os.Remove(markOf(group))
		os.Remove(markOf(group + "-other"))
	})
	for range 3 {
		tell(group, "note one")
	}
	tell(group+"-other", "note two")
	if got := out.String(); strings.Count(got, "note one") != 1 || strings.Count(got, "note two") != 1 {
		t.Fatalf("the terminal heard:\n%s", got)
	}
}
