package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/authserver/store/redisstore"
	"github.com/tokengate/tokengate/authserver/store/storetest"
	"github.com/tokengate/tokengate/internal/persontest"
	"github.com/tokengate/tokengate/introspect"
)

// codeFlowOf runs the authorization code flow as the load user for client
// (with its secret) and scopes, and returns the refresh token.
func (in *instance) codeFlowOf(client, secret string, scopes ...string) string {
	cfg := &oauth2.Config{ClientID: client, ClientSecret: secret, RedirectURL: "http://127.0.0.1:9/callback", Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: in.url(in.p.Auth, "/oauth/authorize"), TokenURL: in.url(in.p.Auth, "/oauth/token"), AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()
	back, err := persontest.New("load", "hashed-secret").Authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		die("%v", err)
	}
	tok, err := cfg.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		die("%v", err)
	}
	return tok.RefreshToken
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)-\d+\s+\d+\s+([\d.]+) ns/op\s+\d+ B/op\s+(\d+) allocs/op`)

// inProcess runs the validation benchmarks (go test -bench) and the heap
// measurement, and checks their targets.
func inProcess() {
	fmt.Println()
	// Seven rounds, each running every benchmark once, so that raw and
	// full validation of an algorithm run back to back; the median of the
	// per-round ratios resists the machine's drift.
	dir, err := os.MkdirTemp("", "tokengate-bench")
	if err != nil {
		die("%v", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "introspect.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "./introspect").CombinedOutput(); err != nil {
		die("go test -c ./introspect: %v\n%s", err, out)
	}
	const rounds = 7
	runs, allocs := map[string][]float64{}, map[string]int{}
	var names []string
	for range rounds {
		cmd := exec.Command(bin, "-test.run", "XXX", "-test.bench", "^BenchmarkVerify$", "-test.benchmem", "-test.benchtime", "500ms")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			die("introspect benchmarks: %v\n%s", err, out)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[2], 64)
				if runs[m[1]] == nil {
					names = append(names, m[1])
				}
				runs[m[1]] = append(runs[m[1]], v)
				allocs[m[1]], _ = strconv.Atoi(m[3])
			}
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	for _, n := range names {
		fmt.Printf("%-44s %10.0f ns/op   %3d allocs/op   (median of %d)\n", n, median(runs[n]), allocs[n], len(runs[n]))
	}
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		name := "Verify/" + alg + "/"
		c := median(runs[name+"cached"])
		target("validate a cached "+alg+" token ≤ 2 µs, ≤ 5 allocs", c <= 2000 && allocs[name+"cached"] <= 5,
			"%.2f µs, %d allocs", c/1000, allocs[name+"cached"])
		var ratios []float64
		for i, raw := range runs[name+"raw"] {
			ratios = append(ratios, runs[name+"validate"][i]/raw)
		}
		r := median(ratios)
		target("validate an uncached "+alg+" token ≤ 1.15 × raw verify", r <= 1.15, "%.2f× (median of %d rounds)", r, len(ratios))
	}

	// 100,000 revoked jtis in memory.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rv := introspect.NewRevocations()
	list := make([]store.Revocation, 100_000)
	until := time.Now().Add(time.Hour)
	for i := range list {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		list[i] = store.Revocation{Kind: store.RevokeToken, Value: base64.RawURLEncoding.EncodeToString(sum[:16]), At: time.Now(), ExpiresAt: until}
	}
	rv.Replace(list)
	list = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	runtime.KeepAlive(rv)
	target("100,000 revoked jtis ≤ 20 MB of heap", heap <= 20, "%.1f MB", heap)
}

// measureRedisMemory stores 1,000,000 refresh grants and reads how much
// memory Redis grew by.
func measureRedisMemory() {
	rdb := redisClient()
	defer rdb.Close()
	ctx := context.Background()
	used := func() int64 {
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			die("redis INFO memory: %v", err)
		}
		m := regexp.MustCompile(`used_memory:(\d+)`).FindStringSubmatch(info)
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	// As long as the default "tokengate:", so the figure is a deployment's.
	prefix := fmt.Sprintf("tg%07d:", time.Now().UnixNano()%10_000_000)
	st, err := redisstore.New(redisstore.Options{Addresses: []string{*redisURL}, Prefix: prefix})
	if err != nil {
		die("%v", err)
	}
	defer st.Close()
	before := used()
	const n = 1_000_000
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				now := time.Now().UTC()
				sum := sha256.Sum256([]byte(strconv.FormatInt(i, 10)))
				rt := &store.RefreshToken{GrantID: base64.RawURLEncoding.EncodeToString(sum[:16]), Hash: base64.RawURLEncoding.EncodeToString(sum[:]),
					ClientID: "webapp", Subject: "user" + strconv.FormatInt(i%10000, 10), Scope: "read write", AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(720 * time.Hour)}
				if err := storetest.SeedRefreshToken(ctx, st, rt); err != nil {
					die("%v", err)
				}
			}
		})
	}
	wg.Wait()
	// Seeding went through a code per grant: drop those, as a real code
	// expires a minute after it is redeemed, before measuring.
	unlinkPrefix(prefix + "code:")
	grown := float64(used()-before) / (1 << 20)
	fmt.Printf("\nstored %d refresh grants in %s\n", n, time.Since(start).Round(time.Second))
	target("1,000,000 live refresh grants ≤ 400 MB of Redis memory", grown <= 400, "%.0f MB (%.0f bytes a grant)", grown, grown*(1<<20)/n)
	unlinkPrefix(prefix)
	measureGrowth()
}

// measureGrowth measures a grant's state over its rotations, on the Redis
// at -redis-url and on a file store of its own.
func measureGrowth() {
	growth := fmt.Sprintf("tg%07d:", time.Now().UnixNano()%10_000_000)
	rst, err := redisstore.New(redisstore.Options{Addresses: []string{*redisURL}, Prefix: growth})
	if err != nil {
		die("%v", err)
	}
	// Summed over the grants' own keys: used_memory moves by more than a
	// hundred grants take while Redis frees what came before.
	measureGrantGrowth("Redis", rst, rst.Size)
	rst.Close()
	unlinkPrefix(growth)
	dir, err := os.MkdirTemp("", "tokengate-growth")
	if err != nil {
		die("%v", err)
	}
	defer os.RemoveAll(dir)
	bst, err := boltstore.Open(filepath.Join(dir, "tokengate.db"))
	if err != nil {
		die("%v", err)
	}
	measureGrantGrowth("file store", bst, bst.Size)
	bst.Close()
}

// measureGrantGrowth stores grantsMeasured refresh grants in st and
// reports what a grant takes after its first refresh token and after
// rotationsMeasured rotations: a store whose grant state does not grow
// with its rotations shows the same figure twice. size is the store's
// size in bytes.
func measureGrantGrowth(name string, st store.Store, sizeOf func(context.Context) (int, int64, error)) {
	const grants, rotations = 100, 1000
	ctx := context.Background()
	size := func() int64 {
		_, b, err := sizeOf(ctx)
		if err != nil {
			die("%s: %v", name, err)
		}
		return b
	}
	base := size()
	now := time.Now().UTC()
	hash := func(g, r int) string {
		sum := sha256.Sum256([]byte(fmt.Sprint(name, g, "-", r)))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for g := range grants {
		rt := &store.RefreshToken{GrantID: fmt.Sprintf("growth-%d", g), Hash: hash(g, 0), ClientID: "webapp", Subject: "user", Scope: "read write",
			AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(720 * time.Hour)}
		if err := storetest.SeedRefreshToken(ctx, st, rt); err != nil {
			die("%s: %v", name, err)
		}
	}
	first := float64(size()-base) / grants
	var wg sync.WaitGroup
	for g := range grants {
		wg.Go(func() {
			for r := 1; r < rotations; r++ {
				next := store.Successor{Hash: hash(g, r), IssuedAt: time.Now().UTC(), ExpiresAt: now.Add(720 * time.Hour)}
				if _, err := st.RotateRefreshToken(ctx, fmt.Sprintf("growth-%d", g), store.Presented{Hash: hash(g, r-1), Gen: uint64(r)}, "webapp", next); err != nil {
					die("%s: rotation %d of grant %d: %v", name, r, g, err)
				}
			}
		})
	}
	wg.Wait()
	after := float64(size()-base) / grants
	fmt.Printf("%s: a grant takes %.0f bytes with its first refresh token, %.0f after %d rotations\n", name, first, after, rotations)
	target(name+": a grant's state after 1,000 rotations ≤ 2 × after 1", after <= 2*first, "%.0f bytes vs %.0f", after, first)
}

// unlinkPrefix removes every key under prefix from the Redis at -redis-url.
func unlinkPrefix(prefix string) {
	rdb := redisClient()
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 10000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 10000 {
			rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Unlink(ctx, batch...)
	}
}

// redisClient connects to the Redis at -redis-url.
func redisClient() *redis.Client {
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		die("-redis-url: %v", err)
	}
	return redis.NewClient(opts)
}
