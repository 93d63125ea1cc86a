package caddymodule

// Hints for the Caddyfile's most common slips: a misspelt option, and a
// block whose closing brace is missing, so that the site's next directive
// is read as one of the block's options.

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unknownOption is the error for an option block does not take: it lists
// the expected ones, and suggests the one opt is a likely typo of or, when
// none is near, that a closing } above it is missing.
func unknownOption(d *caddyfile.Dispenser, block, opt string, expected ...string) error {
	msg := fmt.Sprintf("%s: unknown option %q (expected %s)", block, opt, listOr(expected))
	if near := nearest(opt, expected); near != "" {
		return d.Errf("%s; did you mean %s?", msg, near)
	}
	return d.Errf("%s; if %s belongs after the %s block, its closing } is missing above this line", msg, opt, block)
}

// listOr is "a, b or c".
func listOr(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// nearest is the candidate within two edits of s (the closest), or "".
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
