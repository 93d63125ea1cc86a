package test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// CONTRIBUTING.md's layout table is the code's: every package has a row,
// and imports (outside its tests) no package of tokengate's that its row
// does not name.
func TestLayout(t *testing.T) {
	doc, err := os.ReadFile("../CONTRIBUTING.md")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/tokengate/tokengate/"
	code := regexp.MustCompile("`([^`]+)`")
	allowed := map[string][]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.Contains(cells[1], "`") {
			continue
		}
		var may []string
		for _, m := range code.FindAllStringSubmatch(cells[3], -1) {
			may = append(may, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			allowed[m[1]] = may
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		may, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no row in CONTRIBUTING.md's layout table", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if dep, ours := strings.CutPrefix(imp, module); ours && !slices.Contains(may, dep) {
				t.Errorf("%s imports %s, which its row in CONTRIBUTING.md does not allow", pkg, dep)
			}
		}
	}
}
