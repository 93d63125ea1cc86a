package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
)

// With -compare REV the load command measures the token endpoint of this
// tree against REV's in the same run: both binaries start side by side
// and each scenario loads them together, half the connections each, so
// that the ratio holds however noisy the machine is.
//
//	go run ./test/load -compare HEAD~3 [-redis]

// buildAt compiles tokengate as it was at rev (a git revision).
func buildAt(rev string) string {
	dir, err := os.MkdirTemp("", "tokengate-bin-"+strings.NewReplacer("/", "-", "~", "-", "^", "-").Replace(rev))
	if err != nil {
		die("%v", err)
	}
	src := filepath.Join(dir, "src")
	if out, err := exec.Command("git", "worktree", "add", "--detach", src, rev).CombinedOutput(); err != nil {
		die("git worktree add %s: %v\n%s", rev, err, out)
	}
	defer exec.Command("git", "worktree", "remove", "--force", src).Run()
	bin := filepath.Join(dir, "tokengate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tokengate")
	cmd.Dir, cmd.Stdout, cmd.Stderr = src, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		die("building tokengate at %s: %v", rev, err)
	}
	return bin
}

// compare loads the refresh grant and the authorization code flow on bin
// and on baseline (rev's), together, on the file store and, with -redis,
// on Redis, and prints this tree's rate as a ratio of rev's.
func compare(bin, baseline, rev, hash, up string) {
	fmt.Printf("this tree against %s, together (%d connections each)\n\n", rev, *concurrency/2)
	registrationBudget = "" // both run one config, and rev may not know max_clients
	stores := []struct{ name, line string }{{"file store", ""}}
	if *redisLoad {
		stores = append(stores, struct{ name, line string }{"Redis store", "redis"})
	}
	var ratios []string
	for _, st := range stores {
		line := func() string {
			if st.line == "" {
				return ""
			}
			return fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\tprefix tgcmp%d:\n\t\t}", *redisURL, time.Now().UnixNano()%1_000_000)
		}
		base := start(baseline, "ES256", hash, up, line())
		head := start(bin, "ES256", hash, up, line())
		if st.line == "" {
			// No store work: the handler and the signature alone.
			token := func(in *instance) func(int) error {
				return poster(in.url(in.p.Auth, "/oauth/token"), url.Values{"grant_type": {"client_credentials"}}, "plain", "plain-secret")
			}
			cc := loadTogether(*concurrency, 2**duration, scenario{"client_credentials, " + rev, token(base)},
				scenario{"client_credentials, this tree", token(head)})
			ratios = append(ratios, fmt.Sprintf("client_credentials: %.2f×", cc[1].rps/cc[0].rps))
		}
		r := loadTogether(*concurrency, 2**duration, scenario{"refresh_token, " + rev + " (" + st.name + ")", base.refreshes()},
			scenario{"refresh_token, this tree (" + st.name + ")", head.refreshes()})
		ratios = append(ratios, fmt.Sprintf("refresh_token (%s): %.2f×", st.name, r[1].rps/r[0].rps))
		c := loadTogether(*concurrency, 2**duration, scenario{"authorize + code exchange, " + rev + " (" + st.name + ")", base.codeFlows("plain")},
			scenario{"authorize + code exchange, this tree (" + st.name + ")", head.codeFlows("plain")})
		ratios = append(ratios, fmt.Sprintf("authorize + code exchange (%s): %.2f×", st.name, c[1].rps/c[0].rps))
		base.stop()
		head.stop()
		if st.line != "" {
			unlinkPrefix("tgcmp")
		}
	}
	fmt.Printf("\nthis tree ÷ %s:\n", rev)
	for _, r := range ratios {
		fmt.Println("  " + r)
	}
}

// codeFlows is a loop body running the authorization code flow end to
// end: each worker a signed-in person of its own, so that a round is the
// authorization request and the code's exchange, and the grants are
// spread over people as a deployment's are. clientID is "plain", which
// skips consent, or "consenting", whose consent each person gives once,
// before the clock starts, and which is then remembered (their live
// grants).
func (in *instance) codeFlows(clientID string) func(int) error {
	cfg := &oauth2.Config{ClientID: clientID, ClientSecret: clientID + "-secret", RedirectURL: "http://127.0.0.1/callback", Scopes: []string{"read"},
		Endpoint: oauth2.Endpoint{AuthURL: in.url(in.p.Auth, "/oauth/authorize"), TokenURL: in.url(in.p.Auth, "/oauth/token"), AuthStyle: oauth2.AuthStyleInHeader}}
	people := make([]*persontest.Person, *concurrency)
	flow := func(w int) error {
		p := people[w]
		verifier := oauth2.GenerateVerifier()
		back, err := p.Authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			return err
		}
		_, err = cfg.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
		return err
	}
	// Each person signs in (and consents) before the clock starts.
	for w := range people {
		people[w] = persontest.New(person(w), "hashed-secret")
		if err := flow(w); err != nil {
			die("the code flow of %s: %v", person(w), err)
		}
	}
	return flow
}
