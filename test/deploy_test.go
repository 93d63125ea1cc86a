package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tokengate/tokengate/internal/redistest"
)

// deploy/compose.yaml runs what it says (the machine has no Docker, so it
// is read, not run): tokengate from the repository's Dockerfile, the
// Caddyfile it mounts where the image reads it, which tokengate validate
// accepts, and its store in the compose file's Redis service.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build struct {
				Context, Dockerfile string
			}
			Image       string
			Volumes     []string
			Environment map[string]string
			DependsOn   map[string]any `yaml:"depends_on"`
			Restart     string
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	tg, ok := compose.Services["tokengate"]
	if !ok {
		t.Fatal("no tokengate service")
	}
	if dockerfile := filepath.Join("../deploy", tg.Build.Context, tg.Build.Dockerfile); !sameFile(t, dockerfile, "../Dockerfile") {
		t.Errorf("the tokengate service builds %s, not the repository's Dockerfile", dockerfile)
	}
	entry, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	reads := regexp.MustCompile(`"--config", "([^"]+)"`).FindSubmatch(entry)
	if reads == nil {
		t.Fatal("the Dockerfile's entrypoint names no config")
	}
	var caddyfile string
	for _, v := range tg.Volumes {
		if src, dst, ok := strings.Cut(v, ":"); ok && strings.TrimSuffix(dst, ":ro") == string(reads[1]) {
			caddyfile = filepath.Join("../deploy", src)
		}
	}
	if caddyfile == "" {
		t.Fatalf("no volume mounts a Caddyfile at %s, where the image reads it: %v", reads[1], tg.Volumes)
	}
	if _, ok := tg.DependsOn["redis"]; !ok || tg.Restart != "on-failure" {
		t.Errorf("tokengate neither waits for Redis nor restarts: depends_on %v, restart %q", tg.DependsOn, tg.Restart)
	}
	cfg, err := os.ReadFile(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	store := regexp.MustCompile(`address redis://([^:/]+):(\d+)/\d+`).FindSubmatch(cfg)
	if store == nil {
		t.Fatalf("%s keeps no state in Redis", caddyfile)
	}
	if _, ok := compose.Services[string(store[1])]; !ok {
		t.Fatalf("the store's Redis, %s, is no service of the compose file", store[1])
	}
	// validate checks that Redis answers: point the config at a test
	// server instead of the compose network's name.
	srv := redistest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	writeFile(t, path, strings.Replace(string(cfg), string(store[0]), "address "+srv.URL, 1))
	if out, err := run(t, []string{"DEMO_SECRET=x", "HOME=" + dir, "XDG_DATA_HOME=" + dir}, "validate", "--config", path, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("tokengate validate refuses %s: %v\n%s", caddyfile, err, out)
	}
}

// sameFile says whether a and b are the same file.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
