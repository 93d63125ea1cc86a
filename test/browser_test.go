package test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tokengate/tokengate/internal/skipnote"
	"golang.org/x/oauth2"
)

// RequireBrowserEnv, set to 1 (as CI does), turns "no chromium" from a skip
// into a failure.
const requireBrowserEnv = "TOKENGATE_REQUIRE_BROWSER"

// A person signs in and approves in a real browser (headless Chromium): the
// pages work without JavaScript under their CSP, and the browser lands on
// the application's callback with a code the application can redeem.
func TestLoginAndConsentInChromium(t *testing.T) {
	ctx := browserContext(t)
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr()})
	g.start(strings.Replace(authCodeCaddyfile, "\t\tclient droplet {", "\t\tscope_description read \"See your droplets\"\n\t\tclient droplet {", 1))

	codes := make(chan string, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case codes <- r.URL.Query().Get("code"):
			default:
			}
		}
		w.Write([]byte("<!doctype html><title>back in the app</title><p>Done"))
	}))
	t.Cleanup(callback.Close)
	cfg := oauthConfig(g, "cli", "", callback.URL+"/callback", "read")
	verifier := oauth2.GenerateVerifier()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) { browserStep(t, ctx, g, what, actions...) }
	text := func() string { return pageText(t, ctx) }
	step("opening the authorization link", chromedp.Navigate(cfg.AuthCodeURL("browser-state", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(chromedp.CSS("#username")))
	loginText := text()
	step("signing in", chromedp.SendKeys(chromedp.CSS("#username"), "mark"),
		chromedp.SendKeys(chromedp.CSS("#password"), markPassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("button[value=approve]")))
	consentText := text()
	step("approving", chromedp.Click(chromedp.CSS("button[value=approve]")))
	for _, want := range []string{"Droplet CLI", "read"} {
		if !strings.Contains(loginText, want) || !strings.Contains(consentText, want) {
			t.Errorf("a page does not show %q:\nlogin: %s\nconsent: %s", want, loginText, consentText)
		}
	}
	if !strings.Contains(consentText, "Mark E. Mark") {
		t.Errorf("the consent page does not say who is signed in: %s", consentText)
	}
	if !strings.Contains(consentText, "is asking for access to:") || !strings.Contains(consentText, "See your droplets") {
		t.Errorf("the consent page does not describe the scope in words: %s", consentText)
	}
	select {
	case code := <-codes:
		if _, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("exchanging the browser's code: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the browser never reached the application's callback (blocked by the CSP's form-action?)")
	}
	// A link from no application this server knows: a page for the
	// person, with a detail line for the developer.
	step("opening a broken link", chromedp.Navigate(g.AuthURL()+"/oauth/authorize?response_type=code&client_id=nobody&state=x"),
		chromedp.WaitVisible(chromedp.CSS("h1")))
	errorText := text()
	for _, want := range []string{"This link does not work", "tell the application's makers", "For the application's developer:", "(invalid_request)"} {
		if !strings.Contains(errorText, want) {
			t.Errorf("the error page does not say %q: %s", want, errorText)
		}
	}
}

// browserContext is a tab of a headless Chromium of the test's own, with
// a minute to do its work; a missing chromium skips the test (fails it
// where TOKENGATE_REQUIRE_BROWSER=1, as in CI).
func browserContext(t *testing.T) context.Context {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		skipnote.Skip(t, requireBrowserEnv, "the browser test", "chromium is not installed", "apt-get install chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// browserStep runs a step's actions in the tab, failing with the
// gateway's log.
func browserStep(t *testing.T, ctx context.Context, g *gateway, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\nlog:\n%s", what, err, g.log)
	}
}

// pageText is the text of the tab's main element.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return s
}

// screenshot saves the tab's page as dir/name and logs where.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
