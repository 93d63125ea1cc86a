// Command load measures tokengate on this machine, in one run, as ratios
// against baselines measured in the same run (the machine is noisy):
//
//	go run ./test/load [-duration 5s] [-concurrency 32] [-redis-memory]
//	go run ./test/load -compare <git revision> [-redis]
//
// It builds the real binary and starts it with a static `respond` site (the
// HTTP stack's ceiling), a reverse_proxy to a small upstream, and the same
// proxy behind bearer_auth; then it loads each scenario in turn and prints
// requests/s and latency percentiles, the token endpoint (client
// credentials with ES256 and EdDSA, secret_hash and plain secret), the
// refresh grant and introspection, the in-process benchmarks the targets
// name, and PASS/FAIL for each target.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/tokengate/tokengate/internal/freeport"
	"github.com/tokengate/tokengate/internal/redistest"
	"golang.org/x/crypto/bcrypt"
)

var (
	duration    = flag.Duration("duration", 5*time.Second, "how long to load each scenario")
	concurrency = flag.Int("concurrency", 32, "concurrent connections")
	redisMemory = flag.Bool("redis-memory", false, "also measure Redis memory for 1,000,000 refresh grants, and what a grant takes after 1 and after 1,000 rotations on Redis and on a file store (takes a few minutes)")
	profileDir  = flag.String("profile", "", "save a CPU profile of tokengate during each scenario into this folder")
	grantGrowth = flag.Bool("grant-growth", false, "only measure what a grant takes after 1 and after 1,000 rotations, on the Redis at -redis-url and on a file store (a minute)")
	redisLoad   = flag.Bool("redis", false, "also load the refresh grant on a Redis store")
	exchanges   = flag.Bool("exchange", false, "instead of the full run, measure token exchange (RFC 8693) against client_credentials")
	policies    = flag.Bool("policy", false, "instead of the full run, measure bearer_auth's policy: a route with MCP tool rules on a 2 KB JSON-RPC body against the same route without, a local rate_limit against none, and a shared one on Redis")
	sessions    = flag.Bool("session", false, "instead of the full run, measure session_auth: a request with a fresh session against bearer_auth on the same route, and the sign-in round trip")
	openID      = flag.Bool("openid", false, "instead of the full run, measure the OpenID Provider: the token endpoint with openid against without, userinfo against introspection")
	compareRev  = flag.String("compare", "", "instead of the full run, load the token endpoint of this tree and of this git revision together, and print the ratio")
	redisURL    = flag.String("redis-url", "", "with -redis, -redis-memory or -grant-growth: the Redis to use (under a key prefix of its own, removed afterwards); default a redis-server of the run's own, with the production settings of docs/operations.md (appendfsync everysec)")
)

const caddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	default_bind 127.0.0.1
	log {
		level ERROR
	}
	# The registration load comes from many addresses, one per request.
	servers {
		trusted_proxies static 127.0.0.0/8
	}
	oauth2 {
		issuer http://127.0.0.1:{{.Auth}}
		{{.Store}}
		signing_alg {{.Alg}}
		client hashed {
			secret_hash {{.Hash}}
			grant client_credentials
			scope read
		}
		client plain {
			secret plain-secret
			grant client_credentials authorization_code refresh_token
			redirect_uri http://127.0.0.1/callback
			scope read
			skip_consent
		}
		client consenting {
			secret consenting-secret
			grant authorization_code refresh_token
			redirect_uri http://127.0.0.1/callback
			scope read
		}
		client rs {
			secret rs-secret
			grant client_credentials
			scope read
			resource_server
		}
		# A client that exchanges tokens for the bearer_auth site (-exchange).
		client orders {
			secret orders-secret
			grant token_exchange
			exchange http://127.0.0.1:{{.Bearer}} read
		}
		# session_auth's client (-session).
		client bff {
			secret bff-secret
			grant authorization_code refresh_token
			redirect_uri http://127.0.0.1:{{.Session}}/.tokengate/callback
			scope openid read
			skip_consent
		}
		# OpenID clients (-openid): RS256 ID tokens, and ES256 ones.
		client oidc {
			secret oidc-secret
			grant authorization_code refresh_token
			redirect_uri http://127.0.0.1/callback
			scope read openid profile email
			skip_consent
		}
		client oidc-es {
			secret oidc-es-secret
			grant authorization_code refresh_token
			redirect_uri http://127.0.0.1/callback
			scope read openid profile email
			skip_consent
			id_token_alg ES256
		}
		user load {{.Hash}}
		{{range .People}}user {{.}} {{$.Hash}}
		{{end}}
		registration {
			open
			scope read
			{{.RegistrationBudget}}
		}
		trust {{.Remote}} {
			audience https://api.example.com
			introspection {
				client_id gateway
				client_secret gw-secret
				cache_ttl 1h
			}
		}
	}
}
http://127.0.0.1:{{.Auth}} {
	oauth2_server
}
http://127.0.0.1:{{.Static}} {
	respond "ok"
}
http://127.0.0.1:{{.Proxy}} {
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.Bearer}} {
	bearer_auth read
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.Session}} {
	session_auth {
		client bff
		scope openid read
		forward_token
	}
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.DPoP}} {
	bearer_auth {
		scope read
		dpop required
	}
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.Trusted}} {
	bearer_auth {
		issuer {{.Remote}}
		scope read
	}
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.MCPRules}} {
	bearer_auth {
		scope read
		mcp_tool delete_* admin
		mcp_tool search read
		mcp_method resources/read read
	}
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.RateLocal}} {
	bearer_auth {
		scope read
		rate_limit 1000000000/1s
	}
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.RateShared}} {
	bearer_auth {
		scope read
		rate_limit 1000000000/1s shared
	}
	reverse_proxy {{.Upstream}}
}
http://127.0.0.1:{{.Resource}} {
	bearer_auth {
		resource http://127.0.0.1:{{.Resource}}/mcp
		scope read
	}
	reverse_proxy {{.Upstream}}
}
`

type ports struct {
	Admin, Auth, Static, Proxy, Bearer, Resource, Trusted, DPoP, Session, MCPRules, RateLocal, RateShared int
	Upstream, Dir, Alg, Hash, Store, Remote                                                               string
	// RegistrationBudget lifts registration's max_clients past what the
	// load registers (registrationBudget).
	RegistrationBudget string
	// People are users besides "load", one per connection (person), for
	// the flows where whose grants they are matters.
	People []string
}

// person is the user connection w signs in as in codeFlows.
func person(w int) string { return fmt.Sprintf("load-%d", w%people) }

// people is how many users besides "load" the config has.
const people = 256

func freePort() int {
	port, err := freeport.Port()
	if err != nil {
		die("%v", err)
	}
	return port
}

// result is one scenario's figures.
type result struct {
	name     string
	rps      float64
	p50, p99 time.Duration
	errors   int
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 1024}, Timeout: 10 * time.Second}

// load runs do from concurrency workers for duration.
func load(name string, do func(worker int) error) result {
	return loadWith(name, *concurrency, *duration, do)
}

// loadWith runs do from conc workers for d.
func loadWith(name string, conc int, d time.Duration, do func(worker int) error) result {
	return loadTogether(conc, d, scenario{name, do})[0]
}

// scenario is a named request loop body.
type scenario struct {
	name string
	do   func(worker int) error
}

// loadTogether runs the scenarios at the same time for d, with conc
// workers shared out among them, so that whatever else the machine does
// meanwhile hits them alike.
func loadTogether(conc int, d time.Duration, scenarios ...scenario) []result {
	var mu sync.Mutex
	lat := make([][]time.Duration, len(scenarios))
	errs := make([]int, len(scenarios))
	// One request first: what the targets measure is the steady state
	// (a secret_hash client's first request pays bcrypt once).
	for _, sc := range scenarios {
		if err := sc.do(0); err != nil {
			die("%s: %v", sc.name, err)
		}
	}
	var in *instance
	if len(running) > 0 && len(scenarios) == 1 {
		in = running[len(running)-1]
	}
	server0, generator0 := cpuTimes(in)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	if *profileDir != "" && in != nil && conc == *concurrency {
		wg.Go(func() { profile(running[len(running)-1], scenarios[0].name) })
	}
	// The same number of connections for each scenario, or their rates
	// could not be compared.
	conc -= conc % len(scenarios)
	for w := range conc {
		i := w % len(scenarios)
		sc := scenarios[i]
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := sc.do(w); err != nil {
					bad++
					if bad == 1 && w < len(scenarios) {
						log.Printf("%s: %v", sc.name, err)
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat[i] = append(lat[i], mine...)
			errs[i] += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	server1, generator1 := cpuTimes(in)
	var out []result
	for i, sc := range scenarios {
		out = append(out, summarize(sc.name, lat[i], errs[i], d))
	}
	if n := time.Duration(len(lat[0])); in != nil && n > 0 && server1 > 0 {
		// Where a request's CPU went: a target's ratio moves with both.
		fmt.Printf("%44s CPU a request: tokengate %s, this command %s\n", "",
			((server1 - server0) / n).Round(time.Microsecond), ((generator1 - generator0) / n).Round(time.Microsecond))
	}
	return out
}

// cpuTimes is the CPU time (user and system) that tokengate's process in
// (nil: none) and this command have used so far. tokengate's is read from
// /proc, in the kernel's clock ticks (USER_HZ, 100 a second on Linux):
// zero where there is no /proc.
func cpuTimes(in *instance) (server, generator time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		generator = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if in == nil {
		return 0, generator
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", in.cmd.Process.Pid))
	if err != nil {
		return 0, generator
	}
	// The fields after the command's name (which may hold spaces): utime
	// and stime are the 12th and 13th of them (proc(5)).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, generator
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, generator
}

// alternatingRatio is b's rate over a's, the median of five rounds that
// load a, then b, for a fifth of the duration each (at least a second):
// one after the other, but close enough that the machine's drift hits
// both alike (together, they would share the CPU unevenly).
func alternatingRatio(a, b scenario) float64 {
	d := max(time.Second, *duration/5)
	var ratios []float64
	for round := range 5 {
		ra := loadWith(fmt.Sprintf("%s (round %d)", a.name, round+1), *concurrency, d, a.do)
		rb := loadWith(fmt.Sprintf("%s (round %d)", b.name, round+1), *concurrency, d, b.do)
		ratios = append(ratios, rb.rps/ra.rps)
	}
	slices.Sort(ratios)
	return ratios[2]
}

// loadAlternating runs the scenarios one request at a time, in turn (in a
// random order each turn), for d.
func loadAlternating(d time.Duration, scenarios ...scenario) []result {
	lat := make([][]time.Duration, len(scenarios))
	errs := make([]int, len(scenarios))
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		for _, i := range rand.Perm(len(scenarios)) {
			sc := scenarios[i]
			t0 := time.Now()
			if err := sc.do(0); err != nil {
				errs[i]++
				continue
			}
			lat[i] = append(lat[i], time.Since(t0))
		}
	}
	var out []result
	for i, sc := range scenarios {
		out = append(out, summarize(sc.name, lat[i], errs[i], d))
	}
	return out
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(time.Microsecond).String())
	}
	return strings.Join(s, ", ")
}

// summarize prints and returns one scenario's figures.
func summarize(name string, lat []time.Duration, errs int, d time.Duration) result {
	slices.Sort(lat)
	r := result{name: name, errors: errs, rps: float64(len(lat)) / d.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	fmt.Printf("%-44s %10.0f req/s   p50 %8s   p99 %8s   errors %d\n", r.name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors)
	return r
}

// profile saves a CPU profile of in for most of the scenario's duration,
// from Caddy's admin endpoint.
func profile(in *instance, name string) {
	secs := max(1, int(duration.Seconds())-1)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", in.p.Admin, secs))
	if err != nil {
		log.Printf("profile %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
	_ = os.MkdirAll(*profileDir, 0o755)
	f, err := os.Create(filepath.Join(*profileDir, strings.NewReplacer(" ", "_", ":", "", "+", "", ",", "").Replace(name)+".prof"))
	if err != nil {
		log.Printf("profile %s: %v", name, err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

func do(req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return nil
}

func get(u, bearer string) error {
	req, _ := http.NewRequest("GET", u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(req, 200)
}

// poster is a loop body posting form to u with HTTP Basic credentials and
// wanting 200, built once: the generator's work per request is then as
// small as the static site's, so that its share of the two cores does not
// count against the endpoint loaded.
func poster(u string, form url.Values, id, secret string) func(int) error {
	body := form.Encode()
	auth := []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}
	ct := []string{"application/x-www-form-urlencoded"}
	return func(int) error {
		req, _ := http.NewRequest("POST", u, strings.NewReader(body))
		req.Header["Content-Type"], req.Header["Authorization"] = ct, auth
		return do(req, http.StatusOK)
	}
}

func postForm(u string, form url.Values, id, secret string) (map[string]any, error) {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return m, fmt.Errorf("status %d: %v", resp.StatusCode, m)
	}
	return m, nil
}

type instance struct {
	p   ports
	cmd *exec.Cmd
}

// running instances, stopped by die as well as at the end.
var running []*instance

// die stops the instances and exits, so that no tokengate outlives a failed
// run.
func die(format string, args ...any) {
	for _, in := range running {
		in.stop()
	}
	if stopRedis != nil {
		stopRedis()
	}
	log.Fatalf(format, args...)
}

// stopRedis stops the redis-server the run started; nil when it started
// none.
var stopRedis func()

// ownRedis starts a redis-server of the run's own when one is needed and
// -redis-url names none.
func ownRedis() {
	if *redisURL != "" || !(*redisLoad || *redisMemory || *grantGrowth || *policies) {
		return
	}
	dir, err := os.MkdirTemp("", "tokengate-load-redis")
	if err != nil {
		die("%v", err)
	}
	url, stop, err := redistest.Run(dir, "--appendonly", "yes", "--appendfsync", "everysec")
	if err != nil {
		die("%v (install redis-server, or give -redis-url)", err)
	}
	*redisURL = url
	stopRedis = func() { stop(); os.RemoveAll(dir) }
	fmt.Printf("a redis-server of its own at %s (appendonly, appendfsync everysec)\n", url)
}

// start runs tokengate signing with alg; storeLine "" is the file store.
// registrationBudget is the registration block's budget line: the load
// registers far more clients than the default max_clients. -compare
// empties it, as a baseline may predate the option.
var registrationBudget = "max_clients 10000000"

// remote is the trusted issuer every instance's config names.
var remote *remoteIssuer

func start(bin, alg, hash, upstream, storeLine string) *instance {
	dir, err := os.MkdirTemp("", "tokengate-load")
	if err != nil {
		die("%v", err)
	}
	if storeLine == "" {
		storeLine = "store file " + filepath.Join(dir, "tokengate.db")
	}
	p := ports{Admin: freePort(), Auth: freePort(), Static: freePort(), Proxy: freePort(), Bearer: freePort(), Resource: freePort(), Trusted: freePort(), DPoP: freePort(),
		Session: freePort(), MCPRules: freePort(), RateLocal: freePort(), RateShared: freePort(), Remote: remote.URL,
		Upstream: upstream, Dir: dir, Alg: alg, Hash: hash, Store: storeLine, RegistrationBudget: registrationBudget}
	for w := range people {
		p.People = append(p.People, person(w))
	}
	var cfg bytes.Buffer
	if err := template.Must(template.New("").Parse(caddyfile)).Execute(&cfg, p); err != nil {
		die("%v", err)
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
		die("%v", err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		die("%v", err)
	}
	for i := 0; ; i++ {
		if get(fmt.Sprintf("http://127.0.0.1:%d/", p.Static), "") == nil {
			break
		}
		if i > 300 {
			die("tokengate did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	in := &instance{p: p, cmd: cmd}
	running = append(running, in)
	return in
}

func (in *instance) stop() {
	running = slices.DeleteFunc(running, func(o *instance) bool { return o == in })
	_ = in.cmd.Process.Signal(os.Interrupt)
	_ = in.cmd.Wait()
	os.RemoveAll(in.p.Dir)
}

func (in *instance) url(port int, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
}

// token gets a client credentials token; kv are more form fields.
func (in *instance) token(id, secret string, kv ...string) string {
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	m, err := postForm(in.url(in.p.Auth, "/oauth/token"), form, id, secret)
	if err != nil {
		die("%v", err)
	}
	return m["access_token"].(string)
}

// loadRefresh loads the refresh grant: each worker rotates its own grant.
func (in *instance) loadRefresh(name string) result {
	return load(name, in.refreshes())
}

// refreshes is a loop body rotating one grant per connection.
func (in *instance) refreshes() func(int) error {
	return in.refreshesOf("plain", "read")
}

// refreshesOf is refreshes of grants to client (whose secret is its ID
// with "-secret") of scopes; with openid, each answer must carry an ID
// token.
func (in *instance) refreshesOf(client string, scopes ...string) func(int) error {
	secret := client + "-secret"
	var rts []string
	for range *concurrency {
		rts = append(rts, in.codeFlowOf(client, secret, scopes...))
	}
	openid := slices.Contains(scopes, "openid")
	return func(w int) error {
		m, err := postForm(in.url(in.p.Auth, "/oauth/token"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rts[w]}}, client, secret)
		if err == nil {
			rts[w] = m["refresh_token"].(string)
			if _, ok := m["id_token"].(string); ok != openid {
				err = fmt.Errorf("id_token in the answer: %v, want %v", ok, openid)
			}
		}
		return err
	}
}

// loadRegistration loads dynamic registration, each request from another
// address (through trusted_proxies) so that the per-address limit never
// refuses one: its counter's work is in the figure.
func (in *instance) loadRegistration(name string) result {
	var registered atomic.Int64
	return load(name, func(int) error {
		n := registered.Add(1)
		req, _ := http.NewRequest("POST", in.url(in.p.Auth, "/oauth/register"), strings.NewReader(
			`{"client_name":"Load","redirect_uris":["http://127.0.0.1:5000/callback"],"token_endpoint_auth_method":"none"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
		return do(req, http.StatusCreated)
	})
}

type check struct {
	name   string
	ok     bool
	detail string
}

var checks []check

func target(name string, ok bool, format string, args ...any) {
	checks = append(checks, check{name, ok, fmt.Sprintf(format, args...)})
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	ownRedis()
	if stopRedis != nil {
		defer stopRedis()
	}
	if *grantGrowth {
		measureGrowth()
		report()
		return
	}
	bin := build()
	up := upstream()
	remote = startRemote()
	hash, _ := bcrypt.GenerateFromPassword([]byte("hashed-secret"), bcrypt.DefaultCost)
	fmt.Printf("tokengate load, %s per scenario, %d connections, %d CPUs (%s/%s, %s)\n\n", *duration, *concurrency, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if *compareRev != "" {
		compare(bin, buildAt(*compareRev), *compareRev, string(hash), up)
		return
	}
	if *openID {
		measureOpenID(bin, string(hash), up)
		report()
		return
	}
	if *sessions {
		measureSessions(bin, string(hash), up)
		report()
		return
	}
	if *exchanges {
		measureExchange(bin, string(hash), up)
		report()
		return
	}
	if *policies {
		measurePolicy(bin, string(hash), up)
		report()
		return
	}

	es := start(bin, "ES256", string(hash), up, "")
	tok := es.token("plain", "plain-secret")
	staticGet := func(int) error { return get(es.url(es.p.Static, "/"), "") }
	static := load("static respond", staticGet)
	// The baseline carries the same Authorization header, which both
	// forward upstream: the difference is bearer_auth's work alone.
	proxyGet := func(int) error { return get(es.url(es.p.Proxy, "/"), tok) }
	bearerGet := func(int) error { return get(es.url(es.p.Bearer, "/"), tok) }
	load("reverse_proxy", proxyGet)
	load("bearer_auth + reverse_proxy", bearerGet)
	// The ratio is taken with both loaded at once, half the connections
	// each: run one after the other, the machine's drift between the two
	// runs is as large as the difference measured.
	pair := loadTogether(*concurrency, 2**duration, scenario{"reverse_proxy (together)", proxyGet}, scenario{"bearer_auth + reverse_proxy (together)", bearerGet})
	proxy, bearer := pair[0], pair[1]
	// Added latency, measured one request at a time (under saturation p99
	// is queueing, not work), alternating between the two sites so that
	// every hiccup of the machine can land on either; the median of five
	// rounds, as one round's p99 is a few dozen requests.
	var added []time.Duration
	for range 5 {
		alt := loadAlternating(*duration, scenario{"reverse_proxy, 1 connection", proxyGet}, scenario{"bearer_auth + reverse_proxy, 1 connection", bearerGet})
		added = append(added, alt[1].p99-alt[0].p99)
	}
	slices.Sort(added)
	// A route with an RFC 9728 resource (its metadata, aud = the
	// resource) against the plain bearer_auth route, loaded together.
	resourceURL := es.url(es.p.Resource, "/mcp")
	resTok := es.token("plain", "plain-secret", "resource", resourceURL)
	resPair := loadTogether(*concurrency, 2**duration, scenario{"bearer_auth (together)", bearerGet},
		scenario{"bearer_auth with resource (together)", func(int) error { return get(resourceURL, resTok) }})
	// Another issuer's tokens on a route that trusts it, against the
	// same route shape with tokengate's own, all loaded at once: a JWT
	// (keys held, the token cached after its first check) and an opaque
	// token (its introspection answer cached).
	trustedURL := es.url(es.p.Trusted, "/")
	remoteJWT := remote.token()
	trustTrio := loadTogether(*concurrency, 3**duration, scenario{"bearer_auth, own token (together)", bearerGet},
		scenario{"bearer_auth, another issuer's JWT (together)", func(int) error { return get(trustedURL, remoteJWT) }},
		scenario{"bearer_auth, introspected token (together)", func(int) error { return get(trustedURL, remoteOpaque) }})
	// A DPoP-bound token on a route that requires DPoP, every request
	// with a fresh proof (made ahead), against plain reverse_proxy with the
	// same header size, loaded together.
	dk := newDPoPClient()
	dpopTok := es.dpopToken(dk, "plain", "plain-secret")
	dpopURL := es.url(es.p.DPoP, "/")
	// Enough proofs for the DPoP side at 0.6× the static site's rate
	// (it shares the machine with the other side, so it gets at most
	// half); past them, proofs are made on the spot.
	proofs := dk.pool(max(20_000, int(0.6*static.rps*(2*duration.Seconds()))), "GET", dpopURL, dpopTok)
	dpopPair := loadTogether(*concurrency, 2**duration, scenario{"reverse_proxy (together, DPoP scenario)", proxyGet},
		scenario{"bearer_auth + DPoP proof (together)", func(int) error { return proofs.get() }})
	if n := proofs.late.Load(); n > 0 {
		fmt.Printf("  (%d DPoP proofs were made during the run, which slowed its DPoP side)\n", n)
	}
	reg := es.loadRegistration("register a client (file store, a new address each)")
	ccForm := url.Values{"grant_type": {"client_credentials"}}
	ccHashed := load("token: client_credentials ES256 secret_hash", poster(es.url(es.p.Auth, "/oauth/token"), ccForm, "hashed", "hashed-secret"))
	ccPlain := poster(es.url(es.p.Auth, "/oauth/token"), ccForm, "plain", "plain-secret")
	load("token: client_credentials ES256 secret", ccPlain)
	ccRatio := alternatingRatio(scenario{"static respond", staticGet}, scenario{"token: client_credentials ES256 secret", ccPlain})
	fileRefresh := es.loadRefresh("token: refresh_token ES256 (file store)")
	fileCode := load("authorization code end to end, consent remembered (file store)", es.codeFlows("consenting"))
	intro := load("introspect a valid token", func(int) error {
		m, err := postForm(es.url(es.p.Auth, "/oauth/introspect"), url.Values{"token": {tok}}, "rs", "rs-secret")
		if err == nil && m["active"] != true {
			err = fmt.Errorf("inactive: %v", m)
		}
		return err
	})
	es.stop()

	ed := start(bin, "EdDSA", string(hash), up, "")
	load("token: client_credentials EdDSA secret_hash", poster(ed.url(ed.p.Auth, "/oauth/token"), ccForm, "hashed", "hashed-secret"))
	load("token: client_credentials EdDSA secret", poster(ed.url(ed.p.Auth, "/oauth/token"), ccForm, "plain", "plain-secret"))
	ed.stop()

	if *redisLoad {
		prefix := fmt.Sprintf("tgload%d:", time.Now().UnixNano()%1_000_000)
		rd := start(bin, "ES256", string(hash), up, fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\tprefix %s\n\t\t}", *redisURL, prefix))
		redisRefresh := rd.loadRefresh("token: refresh_token ES256 (Redis store)")
		redisCode := load("authorization code end to end, consent remembered (Redis store)", rd.codeFlows("consenting"))
		redisReg := rd.loadRegistration("register a client (Redis store, a new address each)")
		// The file store against Redis, each a durable store: group commit
		// is what makes these hold.
		for _, r := range []struct {
			name        string
			file, redis result
		}{{"refresh grant", fileRefresh, redisRefresh}, {"authorization code end to end", fileCode, redisCode}, {"registration", reg, redisReg}} {
			target(r.name+": file store ≥ 0.6 × Redis", r.file.rps >= 0.6*r.redis.rps, "%.2f× (%.0f vs %.0f/s)", r.file.rps/r.redis.rps, r.file.rps, r.redis.rps)
		}
		rd.stop()
		unlinkPrefix(prefix)
	}

	fmt.Println()
	target("bearer_auth throughput ≥ 0.98 × reverse_proxy", bearer.rps >= 0.98*proxy.rps, "%.2f×", bearer.rps/proxy.rps)
	target("bearer_auth added p99 ≤ 0.2 ms", added[2] <= 200*time.Microsecond, "%s (median of 5 rounds of one connection; %s)",
		added[2].Round(time.Microsecond), durations(added))
	target("bearer_auth with resource ≥ 0.95 × without", resPair[1].rps >= 0.95*resPair[0].rps, "%.2f×", resPair[1].rps/resPair[0].rps)
	target("another issuer's JWT ≥ 0.95 × own token", trustTrio[1].rps >= 0.95*trustTrio[0].rps, "%.2f×", trustTrio[1].rps/trustTrio[0].rps)
	target("introspected token (cache hit) ≥ 0.95 × own token", trustTrio[2].rps >= 0.95*trustTrio[0].rps, "%.2f×", trustTrio[2].rps/trustTrio[0].rps)
	target("a DPoP route ≥ 0.85 × reverse_proxy", dpopPair[1].rps >= 0.85*dpopPair[0].rps, "%.2f×", dpopPair[1].rps/dpopPair[0].rps)
	target("registration ≥ 100 clients/s (file store)", reg.rps >= 100, "%.0f/s (%.3f× static)", reg.rps, reg.rps/static.rps)
	target("client_credentials (ES256, secret_hash) ≥ 0.3 × static", ccHashed.rps >= 0.3*static.rps, "%.2f× (%.0f tokens/s)", ccHashed.rps/static.rps, ccHashed.rps)
	target("client_credentials (ES256, secret) ≥ 0.5 × static", ccRatio >= 0.5, "%.2f× (median of 5 alternating rounds)", ccRatio)
	target("introspection ≥ 0.5 × static", intro.rps >= 0.5*static.rps, "%.2f×", intro.rps/static.rps)
	inProcess()
	if *redisMemory {
		measureRedisMemory()
	}
	report()
}

// report prints every target's verdict, and exits 1 (stopping the run's
// Redis) if one failed.
func report() {
	fmt.Println()
	failed := 0
	for _, c := range checks {
		verdict := "PASS"
		if !c.ok {
			verdict, failed = "FAIL", failed+1
		}
		fmt.Printf("%s  %-58s %s\n", verdict, c.name, c.detail)
	}
	if failed > 0 {
		if stopRedis != nil {
			stopRedis()
		}
		os.Exit(1)
	}
}

// build compiles tokengate into a temporary directory.
func build() string {
	dir, err := os.MkdirTemp("", "tokengate-bin")
	if err != nil {
		die("%v", err)
	}
	bin := filepath.Join(dir, "tokengate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tokengate")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		die("building tokengate (run this from the repository's root): %v", err)
	}
	return bin
}

// upstream is a small API answering every request.
func upstream() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("%v", err)
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	return l.Addr().String()
}
