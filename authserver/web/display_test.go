package web_test

import (
	"strings"
	"testing"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/web"
)

func TestDisplayText(t *testing.T) {
	for in, want := range map[string]string{
		"Goo\u202egle\u200b Docs":       "Google Docs",
		"  Agent \t\n  One ":            "Agent One",
		"a\u2066b\u2069c\u00adD\ufeffE": "abcDE",
		"Bell\x07 Labs":                 "Bell Labs",
	} {
		if got := web.DisplayText(in); got != want {
			t.Errorf("DisplayText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := web.DisplayText(strings.Repeat("é", 60_000)); got != strings.Repeat("é", client.MaxNameLength)+"…" {
		t.Errorf("a 60,000 character name shows as %d characters", len([]rune(got)))
	}
	for in, want := range map[string]string{
		"g\u043e\u043egle.com":      "xn--ggle-55da.com",
		"g\u043e\u043egle.com:8443": "xn--ggle-55da.com:8443",
		"example.com":               "example.com",
		"[::1]:80":                  "[::1]:80",
	} {
		if got := web.DisplayHost(in); got != want {
			t.Errorf("DisplayHost(%q) = %q, want %q", in, got, want)
		}
	}
}
