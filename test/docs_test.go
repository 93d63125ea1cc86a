package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every relative link of the documentation (README, CONTRIBUTING,
// CHANGELOG, docs/ and its guides and reference) names a file that
// exists, and every #anchor a heading of that file: the docs moved into
// guides, and a link left behind is a reader's dead end.
func TestDocsLinks(t *testing.T) {
	docs := []string{"../README.md", "../CONTRIBUTING.md", "../CHANGELOG.md"}
	for _, pattern := range []string{"../docs/*.md", "../docs/guides/*.md", "../docs/reference/*.md"} {
		more, _ := filepath.Glob(pattern)
		docs = append(docs, more...)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	code := regexp.MustCompile("(?s)```.*?```")
	checked := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(code.ReplaceAllString(string(text), ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), file)
			}
			checked++
			body, err := os.ReadFile(path)
			if err != nil {
				if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
					continue
				}
				t.Errorf("%s links to %s, which does not exist", doc, target)
				continue
			}
			if anchor != "" && !hasAnchor(string(body), anchor) {
				t.Errorf("%s links to %s: no heading there makes #%s", doc, target, anchor)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d relative links checked", checked)
	}
}

// hasAnchor says whether a heading of the markdown text makes anchor, as
// GitHub makes them: lower case, spaces to hyphens, punctuation dropped.
func hasAnchor(text, anchor string) bool {
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, line := range strings.Split(text, "\n") {
		heading, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		a := strings.ReplaceAll(strings.ToLower(drop.ReplaceAllString(heading, "")), " ", "-")
		if a == anchor {
			return true
		}
	}
	return false
}

// The own-build guide names every module tokengate registers, and its
// main package is cmd/tokengate's: what it tells a reader to build is
// what this repository builds and tests.
func TestOwnBuildGuide(t *testing.T) {
	guide, err := os.ReadFile("../docs/guides/your-own-caddy-build.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(t, nil, "list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	mine := 0
	for _, m := range strings.Fields(out) {
		if strings.Contains(m, "oauth2") || strings.Contains(m, "bearer_auth") {
			mine++
			if !strings.Contains(string(guide), "`"+m+"`") {
				t.Errorf("the guide does not name the module %s", m)
			}
		}
	}
	if mine < 5 {
		t.Fatalf("list-modules shows %d of tokengate's modules:\n%s", mine, out)
	}
	main, err := os.ReadFile("../cmd/tokengate/main.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range []string{`caddycmd "github.com/caddyserver/caddy/v2/cmd"`, `_ "github.com/caddyserver/caddy/v2/modules/standard"`, `_ "github.com/tokengate/tokengate/caddymodule"`} {
		if !strings.Contains(string(guide), imp) || !strings.Contains(string(main), imp) {
			t.Errorf("the guide's main and cmd/tokengate do not both import %s", imp)
		}
	}
}

// The README is the front door: what tokengate is, the set-up, one
// walk-through, and the way to the guides and the reference; everything
// else lives under docs/.
func TestReadmeIsShort(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n >= 300 {
		t.Errorf("README.md has %d lines: move what is not the front door to docs/", n)
	}
	for _, want := range []string{"](docs/guides/README.md)", "](docs/reference/", "](docs/troubleshooting.md)", "](CHANGELOG.md)"} {
		if !strings.Contains(string(readme), want) && !strings.Contains(string(readme), strings.TrimSuffix(want, ")")) {
			t.Errorf("the README does not link %s", want)
		}
	}
}
