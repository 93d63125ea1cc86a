package test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/nodetest"
	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/internal/redistest"
)

// walkthrough is one marked walk-through of the README: its shell blocks in
// order, and for each the lines of the answer the README shows after it.
// "…" in a line stands for what differs from run to run (tokens, IDs,
// times); the rest of the line must appear as shown.
type walkthrough struct {
	scripts  []string
	expected [][]string
}

func readWalkthrough(t *testing.T, doc, marker string) walkthrough {
	t.Helper()
	text, err := os.ReadFile("../" + doc)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "<!-- "+marker+" -->")
	section, _, ok2 := strings.Cut(section, "<!-- /"+marker+" -->")
	if !ok || !ok2 {
		t.Fatalf("%s has no %s markers", doc, marker)
	}
	var w walkthrough
	blocks := regexp.MustCompile("(?s)```(\\w*)\n(.*?)```").FindAllStringSubmatch(section, -1)
	for i, b := range blocks {
		if b[1] == "sh" {
			w.scripts = append(w.scripts, b[2])
			w.expected = append(w.expected, nil)
			continue
		}
		if b[1] == "text" || i == 0 || blocks[i-1][1] != "sh" {
			continue // not the answer to a command (```text: what a browser shows)
		}
		for _, line := range strings.Split(b[2], "\n") {
			if line = strings.TrimSpace(line); line != "" {
				w.expected[len(w.expected)-1] = append(w.expected[len(w.expected)-1], line)
			}
		}
	}
	return w
}

// guideWalkthrough is the walk-through of a guide (doc, marker), which
// must have that many commands, once the ports its examples use are free
// (else the test is skipped, saying which).
func guideWalkthrough(t *testing.T, doc, marker string, commands int, ports ...string) walkthrough {
	t.Helper()
	skipIfBusy(t, ports...)
	w := readWalkthrough(t, doc, marker)
	if len(w.scripts) != commands {
		t.Fatalf("the walk-through of %s has %d commands, want %d", doc, len(w.scripts), commands)
	}
	return w
}

// run runs the walk-through's blocks from..to in one shell and checks their
// output; it returns the output.
func (w walkthrough) run(t *testing.T, dir string, env []string, from, to int) string {
	t.Helper()
	script := strings.Join(w.scripts[from:to], "echo\n")
	sh := exec.Command("bash", "-euo", "pipefail", "-c", script)
	sh.Dir, sh.Env = dir, append(os.Environ(), env...)
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the walk-through failed: %v\n%s\n--- script:\n%s", err, out, script)
	}
	got := strings.ReplaceAll(string(out), "\r", "")
	for _, lines := range w.expected[from:to] {
		for _, line := range lines {
			if !shownIn(line, got) {
				t.Errorf("the README shows %q, the commands printed:\n%s", line, out)
			}
		}
	}
	return string(out)
}

// skipIfBusy skips the test when one of an example's fixed ports is taken.
func skipIfBusy(t *testing.T, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("the example's port %s is busy here: %v", addr, err)
		}
		l.Close()
	}
}

// runExample runs the binary on an example config, as the README has the
// reader do, until the test ends; it returns once addr accepts connections.
// It runs in a folder of its own, as a clone of the repository would be:
// an example's relative store path lands there.
func runExample(t *testing.T, config, addr string) {
	t.Helper()
	runExampleIn(t, t.TempDir(), config, addr)
}

// runExampleIn is runExample in dir, which is also its HOME: examples
// run in one dir share what a reader's machine shares.
func runExampleIn(t *testing.T, dir, config, addr string, env ...string) {
	t.Helper()
	config, err := filepath.Abs(config)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--config", config)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	cmd.Env = append(cmd.Env, env...)
	log := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	if !waitFor(30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("%s did not come up:\n%s", config, log)
	}
}

// The README's walk-throughs work verbatim against Caddyfile.example: their
// commands run in a shell, in order, and every line of every answer shown
// appears in what they print. The person's part of the authorization code
// flow is played by persontest, as the README tells a person to do it.
func TestReadmeWalkthroughs(t *testing.T) {
	skipIfBusy(t, "127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:9000", "127.0.0.1:2019")
	cc, code, device, admin := readWalkthrough(t, "README.md", "walkthrough"), readWalkthrough(t, "docs/guides/authorization-code.md", "walkthrough-code"),
		readWalkthrough(t, "docs/guides/device.md", "walkthrough-device"), readWalkthrough(t, "docs/guides/registration-and-revocation.md", "walkthrough-admin")
	if len(cc.scripts) < 4 || len(code.scripts) < 4 || len(device.scripts) != 5 || len(admin.scripts) < 4 {
		t.Fatalf("walk-throughs too short: %d, %d, %d and %d commands", len(cc.scripts), len(code.scripts), len(device.scripts), len(admin.scripts))
	}

	runExample(t, "../Caddyfile.example", "127.0.0.1:8081")

	t.Run("client credentials", func(t *testing.T) {
		cc.run(t, t.TempDir(), nil, 0, len(cc.scripts))
	})
	t.Run("authorization code", func(t *testing.T) {
		work := t.TempDir()
		// Step 1 prints the link; keep the verifier it made.
		code.scripts[0] += `echo "VERIFIER=$VERIFIER"` + "\n"
		out := code.run(t, work, nil, 0, 1)
		var link, verifier string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "http://localhost:8080/oauth/authorize?") {
				link = line
			}
			if v, ok := strings.CutPrefix(line, "VERIFIER="); ok {
				verifier = v
			}
		}
		if link == "" || verifier == "" {
			t.Fatalf("step 1 printed no link:\n%s", out)
		}
		// Step 2: the person signs in as mark and allows.
		p := persontest.New("mark", "demo-password")
		back, err := p.Authorize(link)
		if err != nil {
			t.Fatal(err)
		}
		if back.Host != "127.0.0.1" || back.Path != "/callback" || back.Query().Get("state") != "af0ifjsldkj" {
			t.Fatalf("callback %s", back)
		}
		// Steps 4-7 with the code copied from the callback.
		code.run(t, work, []string{"CODE=" + back.Query().Get("code"), "VERIFIER=" + verifier}, 1, len(code.scripts))
	})
	t.Run("register and revoke", func(t *testing.T) {
		work := t.TempDir()
		// The README has the reader build ./tokengate first.
		if err := os.Symlink(binary, filepath.Join(work, "tokengate")); err != nil {
			t.Fatal(err)
		}
		out := admin.run(t, work, nil, 0, len(admin.scripts))
		if strings.Count(out, "revoked: 1") < 3 || !strings.Contains(out, "client_secret:") {
			t.Fatalf("the revocations and the secret rotation did not all report:\n%s", out)
		}
	})
	t.Run("device", func(t *testing.T) {
		work := t.TempDir()
		start := time.Now()
		device.run(t, work, nil, 0, 3) // codes, QR, the pending poll
		// Step 4: the person types the code, lower case, signs in, allows.
		p := persontest.New("mark", "demo-password")
		p.UserCode = strings.ToLower(userCodeIn(t, work))
		last, err := p.Device("http://localhost:8080/device")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(last.Body, "return to your device") {
			t.Fatalf("last page:\n%s", last.Body)
		}
		// A person takes longer than the 5 s interval; so must the test.
		time.Sleep(time.Until(start.Add(4500 * time.Millisecond)))
		device.run(t, work, nil, 3, 5)
	})
}

// The MCP guide's walk-through works verbatim on examples/mcp.Caddyfile
// in front of the SDK's everything server, on the ports it names.
func TestReadmeMCPWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/mcp.md", "walkthrough-mcp", 7, "127.0.0.1:8090", "127.0.0.1:8091", "127.0.0.1:3001", "127.0.0.1:2020")
	startEverything(t, nodetest.Dir(t, "mcp"), 3001)
	runExample(t, "../examples/mcp.Caddyfile", "127.0.0.1:8091")
	work := t.TempDir()
	// Steps 1-5: discovery, registration, the link; keep the verifier and
	// the client ID, as the reader's shell does.
	w.scripts[4] += `echo "VERIFIER=$VERIFIER CLIENT_ID=$CLIENT_ID"` + "\n"
	out := w.run(t, work, nil, 0, 5)
	link := regexp.MustCompile(`(?m)^http://localhost:8090/oauth/authorize\?\S+`).FindString(out)
	kept := regexp.MustCompile(`(?m)^VERIFIER=(\S+) CLIENT_ID=(\S+)`).FindStringSubmatch(out)
	if link == "" || kept == nil {
		t.Fatalf("step 5 printed no link:\n%s", out)
	}
	// The person signs in as mark and allows.
	p := persontest.New("mark", "demo-password")
	back, err := p.Authorize(link)
	if err != nil {
		t.Fatal(err)
	}
	// Steps 6-7 with the code from the callback.
	w.run(t, work, []string{"CODE=" + back.Query().Get("code"), "VERIFIER=" + kept[1], "CLIENT_ID=" + kept[2]}, 5, 7)
}

// Every Caddyfile the documentation shows as one (```caddyfile: the
// README, docs/, its guides and reference, and CONTRIBUTING.md) adapts,
// and the systemd unit and the Dockerfile the operations guide shows are
// the repository's own.
func TestReadmeConfigs(t *testing.T) {
	docs := []string{"../README.md", "../CONTRIBUTING.md"}
	for _, pattern := range []string{"../docs/*.md", "../docs/guides/*.md", "../docs/reference/*.md"} {
		more, _ := filepath.Glob(pattern)
		docs = append(docs, more...)
	}
	dir := t.TempDir()
	total := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(text), -1)
		total += len(blocks)
		for i, b := range blocks {
			path := filepath.Join(dir, "Caddyfile")
			writeFile(t, path, b[1])
			if out, err := run(t, []string{"REDIS_PASSWORD=x", "HOME=" + dir, "XDG_DATA_HOME=" + dir}, "adapt", "--config", path, "--adapter", "caddyfile"); err != nil {
				t.Errorf("%s caddyfile block %d does not adapt: %v\n%s\n%s", doc, i+1, err, out, b[1])
			}
		}
	}
	if total < 5 {
		t.Fatalf("only %d caddyfile blocks in %v", total, docs)
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for guide, examples := range map[string][]string{
		"mcp.md":                     {"mcp.Caddyfile"},
		"mcp-tools.md":               {"mcp-tools.Caddyfile"},
		"quotas.md":                  {"quota.Caddyfile"},
		"token-exchange.md":          {"exchange.Caddyfile"},
		"agents-through-your-idp.md": {"corp-idp.Caddyfile", "agent.Caddyfile"},
	} {
		text, err := os.ReadFile("../docs/guides/" + guide)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range examples {
			if example, err := os.ReadFile("../examples/" + name); err != nil || !strings.Contains(string(text), string(example)) {
				t.Errorf("docs/guides/%s does not show examples/%s as it is (%v)", guide, name, err)
			}
		}
	}
	for _, file := range []string{"../deploy/tokengate.service", "../Dockerfile"} {
		content, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ops), string(content)) {
			t.Errorf("docs/operations.md does not show %s as it is", file)
		}
	}
}

// shownIn says whether a line the README shows appears in out, on one line
// of it, "…" matching anything, letter case aside (HTTP header names).
func shownIn(shown, out string) bool {
	parts := strings.Split(shown, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?im)` + strings.Join(parts, `[^\n]*`)).MatchString(out)
}

// Every example config runs as is, next to all the others (their own
// ports, admin addresses and store files): a reader may start any of them
// while another is running.
func TestExamplesRunTogether(t *testing.T) {
	configs, _ := filepath.Glob("../examples/*.Caddyfile")
	configs = append([]string{"../Caddyfile.example"}, configs...)
	// A port may be an environment placeholder with its default: {$PORT:8140}.
	site := regexp.MustCompile(`(?m)^http://(?:localhost|127\.0\.0\.1):(?:\{\$\w+:)?(\d+)`)
	admin := regexp.MustCompile(`(?m)^\s*admin (localhost|127\.0\.0\.1):(?:\{\$\w+:)?(\d+)`)
	var addrs []string
	sites := map[string]string{}
	for _, c := range configs {
		text, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		m := site.FindSubmatch(text)
		if m == nil {
			t.Fatalf("%s serves no http://localhost site", c)
		}
		sites[c] = "127.0.0.1:" + string(m[1])
		for _, p := range site.FindAllSubmatch(text, -1) {
			addrs = append(addrs, "127.0.0.1:"+string(p[1]))
		}
		a := "127.0.0.1:2019" // Caddy's default
		if m := admin.FindSubmatch(text); m != nil {
			a = "127.0.0.1:" + string(m[2])
		}
		addrs = append(addrs, a)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("two examples use %s: they cannot run together", a)
		}
		seen[a] = true
	}
	skipIfBusy(t, addrs...)
	home := t.TempDir()                            // one reader's machine: one HOME, one clone
	redis := "REDIS_URL=" + redistest.Start(t).URL // for the examples that share state
	for _, c := range configs {
		runExampleIn(t, home, c, sites[c], redis)
	}
}

// The DPoP guide's walk-through works verbatim on examples/dpop.Caddyfile,
// with panva's oauth4webapi as the client (the reader installs it with
// npm; the test uses test/oidc's, from its lockfile).
func TestDPoPGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/dpop.md", "walkthrough-dpop", 2, "127.0.0.1:8100", "127.0.0.1:8101", "127.0.0.1:2021")
	modules := filepath.Join(nodetest.Dir(t, "oidc"), "node_modules")
	runExample(t, "../examples/dpop.Caddyfile", "127.0.0.1:8101")
	work := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	w.run(t, work, nil, 0, len(w.scripts))
}

// The trusted issuers guide's walk-through works verbatim on
// examples/trusted-issuers.Caddyfile next to Caddyfile.example, whose
// authorization server is the other issuer.
func TestTrustedIssuersGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/trusted-issuers.md", "walkthrough-trust", 3, "127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:9000", "127.0.0.1:2019", "127.0.0.1:8110", "127.0.0.1:8111", "127.0.0.1:2022")
	home := t.TempDir()
	runExampleIn(t, home, "../Caddyfile.example", "127.0.0.1:8080")
	runExampleIn(t, home, "../examples/trusted-issuers.Caddyfile", "127.0.0.1:8111")
	w.run(t, t.TempDir(), nil, 0, len(w.scripts))
}

// The pages guide's console walk-through works verbatim on
// examples/console.Caddyfile.
func TestConsoleGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/pages-and-console.md", "walkthrough-console", 2, "127.0.0.1:8130", "127.0.0.1:2023")
	runExample(t, "../examples/console.Caddyfile", "127.0.0.1:8130")
	w.run(t, t.TempDir(), nil, 0, len(w.scripts))
}

// The several-instances guide's walk-through works verbatim on two
// instances of examples/several-instances.Caddyfile sharing a Redis (the
// test's own, through REDIS_URL, where the reader's is on 6379).
func TestSeveralInstancesGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/several-instances.md", "walkthrough-instances", 2, "127.0.0.1:8140", "127.0.0.1:8141", "127.0.0.1:8142", "127.0.0.1:8143", "127.0.0.1:2026", "127.0.0.1:2027")
	redis := "REDIS_URL=" + redistest.Start(t).URL
	home := t.TempDir()
	runExampleIn(t, home, "../examples/several-instances.Caddyfile", "127.0.0.1:8140", redis)
	runExampleIn(t, home, "../examples/several-instances.Caddyfile", "127.0.0.1:8142", redis,
		"INSTANCE=b", "AUTH_PORT=8142", "API_PORT=8143", "ADMIN_PORT=2027")
	w.run(t, t.TempDir(), nil, 0, len(w.scripts))
}

// The login providers guide's walk-through works verbatim on
// examples/login-provider.Caddyfile and oidc-provider on the ports it
// names; the person's part is played by persontest, signing in at the
// provider.
func TestLoginProviderGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/login-providers.md", "walkthrough-login-provider", 2, "127.0.0.1:8150", "127.0.0.1:8151", "127.0.0.1:2028")
	startProvider(t, 8151, "key-1", "RP_REDIRECT=http://localhost:8150/login/dev/callback")
	runExample(t, "../examples/login-provider.Caddyfile", "127.0.0.1:8150")
	work := t.TempDir()
	out := w.run(t, work, nil, 0, 1)
	link := regexp.MustCompile(`(?m)^http://localhost:8150/oauth/authorize\?\S+`).FindString(out)
	if link == "" {
		t.Fatalf("step 1 printed no link:\n%s", out)
	}
	p := persontest.New("", "")
	p.Provider, p.ProviderLogin, p.ProviderHost = "Dev SSO", "mark@example.com", "127.0.0.1:8151"
	back, err := p.Authorize(link)
	if err != nil {
		t.Fatalf("signing in through the provider: %v (pages %v)", err, p.Pages)
	}
	w.run(t, work, []string{"CODE=" + back.Query().Get("code")}, 1, 2)
}

// The OpenID Connect guide's walk-through works verbatim on
// examples/openid.Caddyfile with examples/oidc-app, a go-oidc application,
// beside it; the person's part (signing in, signing out on the account
// page and in the application) is played by persontest.
func TestOpenIDGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/openid-connect.md", "walkthrough-openid", 3, "127.0.0.1:8160", "127.0.0.1:8162", "127.0.0.1:2029")
	runExample(t, "../examples/openid.Caddyfile", "127.0.0.1:8160")
	work := t.TempDir()
	w.run(t, work, nil, 0, 1)

	// The reader's `go run ./examples/oidc-app`.
	bin := filepath.Join(work, "oidc-app")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/oidc-app").CombinedOutput(); err != nil {
		t.Fatalf("building the application: %v\n%s", err, out)
	}
	app := exec.Command(bin)
	log := new(syncBuffer)
	app.Stdout, app.Stderr = log, log
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Process.Kill(); _ = app.Wait() })
	if !waitFor(20*time.Second, func() bool {
		resp, err := http.Get("http://127.0.0.1:8162/sessions")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}) {
		t.Fatalf("the application did not start:\n%s", log)
	}

	p := persontest.New("mark", "demo-password")
	signIn := func() {
		t.Helper()
		res, err := p.Get("http://127.0.0.1:8162/")
		if err != nil || res.Redirect == nil {
			t.Fatalf("the application did not send the person to sign in: %+v %v", res, err)
		}
		back, err := p.Authorize(res.Redirect.String())
		if err != nil {
			t.Fatal(err)
		}
		res, err = p.Get(back.String())
		if err != nil || res.Page == nil || !strings.Contains(res.Page.Body, "Signed in as Mark E. Mark <mark@example.com>") {
			t.Fatalf("after the callback: %+v %v\n%s", res, err, log)
		}
	}
	signIn()
	w.run(t, work, nil, 1, 2)

	// Sign out on tokengate's account page: the application hears.
	res, err := p.Get("http://localhost:8160/account")
	if err != nil || res.Page == nil {
		t.Fatalf("the account page: %+v %v", res, err)
	}
	form, err := res.Page.FormTo("/logout")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Post(form.Action, form.Fields); err != nil || res.Page == nil || !strings.Contains(res.Page.Body, "signed out") {
		t.Fatalf("signing out: %+v %v", res, err)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(log.String(), "signed out elsewhere") }) {
		t.Fatalf("the application was not told:\n%s", log)
	}
	w.run(t, work, nil, 2, 3)

	// Sign out in the application: tokengate signs the person out too,
	// without asking (the ID token names them), and sends them back.
	signIn()
	res, err = p.Get("http://127.0.0.1:8162/logout")
	if err != nil || res.Redirect == nil {
		t.Fatalf("the application's sign-out: %+v %v", res, err)
	}
	p.Pages = nil
	if res, err = p.SignOut(res.Redirect.String()); err != nil || res.Redirect == nil || res.Redirect.String() != "http://127.0.0.1:8162/" || len(p.Pages) != 0 {
		t.Fatalf("RP-initiated logout: %+v %v %v", res, err, p.Pages)
	}
	if res, err := p.Get("http://localhost:8160/account"); err != nil || res.Page == nil || !res.Page.Has("password") {
		t.Fatalf("still signed in at tokengate: %+v %v", res, err)
	}
}

// The web app guide's walk-through works verbatim on
// examples/session.Caddyfile; the person's part (signing in, the app's
// page, signing out) is played by persontest.
func TestSessionGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/web-app-sign-in.md", "walkthrough-session", 1, "127.0.0.1:8170", "127.0.0.1:8171", "127.0.0.1:8172", "127.0.0.1:2030")
	runExample(t, "../examples/session.Caddyfile", "127.0.0.1:8170")
	w.run(t, t.TempDir(), nil, 0, 1)

	p := persontest.New("mark", "demo-password")
	res, err := p.Get("http://localhost:8170/")
	if err != nil || res.Redirect == nil {
		t.Fatalf("opening the app: %+v %v", res, err)
	}
	back, err := p.Authorize(res.Redirect.String())
	if err != nil {
		t.Fatal(err)
	}
	if res, err = p.Get(back.String()); err != nil || res.Page == nil || !strings.Contains(res.Page.Body, "Hello, Mark E. Mark (mark)") ||
		!strings.Contains(res.Page.Body, "a bearer token") {
		t.Fatalf("the app's page: %+v %v", res, err)
	}
	form, err := res.Page.FormTo("/.tokengate/logout")
	if err != nil {
		t.Fatal(err)
	}
	res, err = p.Post(form.Action, form.Fields)
	if err != nil || res.Redirect == nil || !strings.HasPrefix(res.Redirect.String(), "http://localhost:8172/oauth/logout?") {
		t.Fatalf("signing out: %+v %v", res, err)
	}
	if res, err = p.SignOut(res.Redirect.String()); err != nil || res.Redirect == nil || res.Redirect.String() != "http://localhost:8170/" {
		t.Fatalf("signing out at tokengate: %+v %v", res, err)
	}
}

// The token exchange guide's walk-through works verbatim on
// examples/exchange.Caddyfile.
func TestTokenExchangeGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/token-exchange.md", "walkthrough-exchange", 3, "127.0.0.1:8180", "127.0.0.1:8181", "127.0.0.1:2031")
	runExample(t, "../examples/exchange.Caddyfile", "127.0.0.1:8181")
	w.run(t, t.TempDir(), nil, 0, len(w.scripts))
}

// The agent guide's walk-through works verbatim on examples/corp-idp.Caddyfile
// (the IdP) and examples/agent.Caddyfile (the MCP server's authorization
// server) side by side; alice's part, approving the agent at the IdP's
// device page, is played by persontest.
func TestAgentGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/agents-through-your-idp.md", "walkthrough-agent", 6,
		"127.0.0.1:8190", "127.0.0.1:8191", "127.0.0.1:8192", "127.0.0.1:2032", "127.0.0.1:2033")
	runExample(t, "../examples/corp-idp.Caddyfile", "127.0.0.1:8190")
	runExample(t, "../examples/agent.Caddyfile", "127.0.0.1:8192")
	work := t.TempDir()
	start := time.Now()
	w.run(t, work, nil, 0, 1)
	p := persontest.New("alice", "demo-password")
	p.UserCode = userCodeIn(t, work)
	if last, err := p.Device("http://localhost:8190/device"); err != nil || !strings.Contains(last.Body, "return to your device") {
		t.Fatalf("alice approving the agent: %v %+v", err, last)
	}
	// The agent polls no sooner than the interval.
	time.Sleep(time.Until(start.Add(5200 * time.Millisecond)))
	w.run(t, work, nil, 1, len(w.scripts))
}

// userCodeIn is the user_code of the device authorization a walk-through
// saved in dir/device.json.
func userCodeIn(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "device.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"user_code":"([^"]+)"`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("device.json: %s", raw)
	}
	return string(m[1])
}

// The MCP tools guide's walk-through works verbatim on
// examples/mcp-tools.Caddyfile in front of the everything server.
func TestMCPToolsGuideWalkthrough(t *testing.T) {
	dir := nodetest.Dir(t, "mcp")
	w := guideWalkthrough(t, "docs/guides/mcp-tools.md", "walkthrough-mcp-tools", 6, "127.0.0.1:8093", "127.0.0.1:8094", "127.0.0.1:3001", "127.0.0.1:2034")
	startEverything(t, dir, 3001)
	runExample(t, "../examples/mcp-tools.Caddyfile", "127.0.0.1:8094")
	w.run(t, t.TempDir(), nil, 0, len(w.scripts))
}

// The quotas guide's walk-through works verbatim on
// examples/quota.Caddyfile.
func TestQuotaGuideWalkthrough(t *testing.T) {
	w := guideWalkthrough(t, "docs/guides/quotas.md", "walkthrough-quota", 4, "127.0.0.1:8195", "127.0.0.1:8196", "127.0.0.1:2035")
	runExample(t, "../examples/quota.Caddyfile", "127.0.0.1:8196")
	w.run(t, t.TempDir(), nil, 0, len(w.scripts))
}
