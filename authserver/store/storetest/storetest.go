// Package storetest is the contract every store.Store must pass. Each
// implementation's tests call Run; no implementation has tests of its own
// for behaviour the contract covers.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

// Opener opens the store under test. Called again after Close, it must open
// the same underlying data (the same file, the same Redis and prefix).
type Opener func() (store.Store, error)

// Run runs the contract suite. newOpener is called once per subtest and
// returns an opener for fresh, empty storage.
func Run(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, reopen func() store.Store)
	}{
		{"Keys", testKeys},
		{"Codes", testCodes},
		{"CodesSingleUseUnderContention", testCodesContention},
		{"DeviceCodes", testDeviceCodes},
		{"DevicePolls", testDevicePolls},
		{"RefreshRetry", testRefreshRetry},
		{"RefreshRetryWindowIsAnchored", testRefreshRetryAnchored},
		{"GrantMaxAge", testGrantMaxAge},
		{"ResourceCarried", testResourceCarried},
		{"RefreshTokens", testRefreshTokens},
		{"RefreshKeyBinding", testRefreshKeyBinding},
		{"RefreshRotationUnderContention", testRefreshContention},
		{"RefreshStateBounded", testRefreshBounded},
		{"AtomicOperationsUnderMixedContention", testMixedContention},
		{"Revocations", testRevocations},
		{"WatchRevocations", testWatchRevocations},
		{"Clients", testClients},
		{"Grants", testGrants},
		{"GrantUses", testGrantUses},
		{"GrantIndexBounded", testGrantIndexBounded},
		{"Counters", testCounters},
		{"Rates", testRates},
		{"Expiry", testExpiry},
		{"PersistsAcrossReopen", testPersistence},
		{"Generation", testGeneration},
		{"RecordUsers", testRecordUsers},
		{"EdgeSessions", testEdgeSessions},
		{"EdgeSessionsBounded", testEdgeSessionsBounded},
		{"EdgeSessionUpdateUnderContention", testEdgeSessionContention},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			open := newOpener(t)
			s, err := open()
			if err != nil {
				t.Fatalf("opening store: %v", err)
			}
			cur := s
			t.Cleanup(func() { cur.Close() })
			reopen := func() store.Store {
				t.Helper()
				if err := cur.Close(); err != nil {
					t.Fatalf("closing store: %v", err)
				}
				s2, err := open()
				if err != nil {
					t.Fatalf("reopening store: %v", err)
				}
				cur = s2
				return s2
			}
			tc.fn(t, s, reopen)
		})
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func in(d time.Duration) time.Time { return time.Now().Add(d).Truncate(time.Millisecond).UTC() }

// concurrently runs fn n times at once and returns how many returned nil.
func concurrently(n int, fn func(i int) error) (wins int, errs []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins, errs
}

func testKeys(t *testing.T, s store.Store, _ func() store.Store) {
	ring, err := s.Keys(ctx)
	must(t, err)
	if ring.Version != 0 || len(ring.Keys) != 0 {
		t.Fatalf("new store has key ring %+v, want empty version 0", ring)
	}
	k := store.SigningKey{ID: "k1", Alg: "ES256", JWK: []byte(`{"kty":"EC"}`), CreatedAt: in(0), ActiveAt: in(0)}
	must(t, s.SwapKeys(ctx, 0, &store.KeyRing{Keys: []store.SigningKey{k}}))
	wantErr(t, s.SwapKeys(ctx, 0, &store.KeyRing{}), store.ErrConflict)
	ring, err = s.Keys(ctx)
	must(t, err)
	if ring.Version != 1 || len(ring.Keys) != 1 || ring.Keys[0].ID != "k1" || string(ring.Keys[0].JWK) != `{"kty":"EC"}` {
		t.Fatalf("after swap got %+v", ring)
	}

	// Of many instances rotating from the same version, exactly one wins.
	wins, errs := concurrently(50, func(i int) error {
		return s.SwapKeys(ctx, 1, &store.KeyRing{Keys: []store.SigningKey{{ID: fmt.Sprint(i)}}})
	})
	if wins != 1 {
		t.Fatalf("%d concurrent swaps won, want exactly 1", wins)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrConflict)
	}
	ring, err = s.Keys(ctx)
	must(t, err)
	if ring.Version != 2 {
		t.Fatalf("version %d after two swaps", ring.Version)
	}
}

func newCode(hash string, ttl time.Duration) *store.AuthCode {
	return &store.AuthCode{Hash: hash, ClientID: "app", Subject: "mark", RedirectURI: "https://app.example/cb", RedirectURIGiven: true,
		Scope: "read", CodeChallenge: "abc", CodeChallengeMethod: "S256", GrantID: "g-" + hash,
		AuthTime: in(0), ExpiresAt: in(ttl), Nonce: "n-0S6_WzA2Mj", OpenID: person()}
}

// person is what an openid grant keeps of the person: every field set,
// so that a store dropping one is seen.
func person() *store.OpenID {
	return &store.OpenID{SID: "sid-1", Name: "Mark E. Mark", PreferredUsername: "mark", Email: "mark@example.com", EmailVerified: true}
}

// successor is a refresh token a redemption may store.
func successor(hash string) store.Successor {
	return store.Successor{Hash: hash, IssuedAt: in(0), ExpiresAt: in(time.Hour)}
}

// graced is a successor issued after from now, whose exchange a retry may
// repeat within a minute (store.Successor's Grace).
func graced(hash string, after time.Duration) store.Successor {
	return store.Successor{Hash: hash, IssuedAt: in(after), ExpiresAt: in(time.Hour), Grace: time.Minute}
}

func ptr[T any](v T) *T { return &v }

// tok is a refresh token as presented: its hash and generation.
func tok(hash string, gen uint64) store.Presented { return store.Presented{Hash: hash, Gen: gen} }

// wantRefresh checks that p is the current refresh token of grant, its
// refresh state equal to want; want nil: that p is not (it was never
// stored, or something else took its place).
func wantRefresh(t *testing.T, s store.Store, grant string, p store.Presented, want *store.RefreshToken) {
	t.Helper()
	got, err := s.RefreshToken(ctx, grant, p)
	if want == nil {
		if err == nil {
			t.Fatalf("refresh token %s/%s (generation %d) is current: %+v", grant, p.Hash, p.Gen, got)
		}
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrAlreadyUsed) {
			t.Fatal(err)
		}
		return
	}
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("refresh token %s/%s = %+v, want %+v", grant, p.Hash, got, want)
	}
}

func testCodes(t *testing.T, s store.Store, _ func() store.Store) {
	c := newCode("h1", time.Minute)
	must(t, s.CreateCode(ctx, c))
	wantErr(t, s.CreateCode(ctx, newCode("h1", time.Minute)), store.ErrExists)

	// Another client's redemption is refused and leaves the code usable.
	got, err := s.ConsumeCode(ctx, c.GrantID, "h1", "intruder", ptr(successor("stolen")))
	must(t, err)
	if got.ClientID != "app" {
		t.Fatalf("a code must come back with its own client, got %+v", got)
	}
	wantRefresh(t, s, c.GrantID, tok("stolen", 1), nil)

	first := successor("first")
	got, err = s.ConsumeCode(ctx, c.GrantID, "h1", "app", &first)
	must(t, err)
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("consumed %+v, want %+v", got, c)
	}
	// The grant's first refresh token is stored with the redemption.
	wantRefresh(t, s, c.GrantID, tok("first", 1), first.Of(c.GrantID, "app", "mark", "read", c.AuthTime, c.Resource, person()))

	got, err = s.ConsumeCode(ctx, c.GrantID, "h1", "app", ptr(successor("again")))
	wantErr(t, err, store.ErrAlreadyUsed)
	if got == nil || got.GrantID != c.GrantID {
		t.Fatalf("second use must return the code so its grant can be revoked, got %+v", got)
	}
	wantRefresh(t, s, c.GrantID, tok("again", 1), nil)
	wantRefresh(t, s, c.GrantID, tok("first", 1), first.Of(c.GrantID, "app", "mark", "read", c.AuthTime, c.Resource, person()))
	_, err = s.ConsumeCode(ctx, c.GrantID, "nope", "app", nil)
	wantErr(t, err, store.ErrNotFound)
	// The same secret under another grant is another code.
	_, err = s.ConsumeCode(ctx, "g-other", "h1", "app", nil)
	wantErr(t, err, store.ErrNotFound)

	// A client without refresh tokens redeems without a successor.
	c2 := newCode("h2", time.Minute)
	must(t, s.CreateCode(ctx, c2))
	_, err = s.ConsumeCode(ctx, c2.GrantID, "h2", "app", nil)
	must(t, err)
}

func testCodesContention(t *testing.T, s store.Store, _ func() store.Store) {
	c := newCode("race", time.Minute)
	must(t, s.CreateCode(ctx, c))
	wins, errs := concurrently(50, func(i int) error {
		_, err := s.ConsumeCode(ctx, c.GrantID, "race", "app", ptr(successor(fmt.Sprint("rt", i))))
		return err
	})
	if wins != 1 {
		t.Fatalf("%d of 50 concurrent redemptions won, want exactly 1", wins)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrAlreadyUsed)
	}
	live := 0
	for i := range 50 {
		if _, err := s.RefreshToken(ctx, c.GrantID, tok(fmt.Sprint("rt", i), 1)); err == nil {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d first refresh tokens stored, want 1", live)
	}
}

func testDeviceCodes(t *testing.T, s store.Store, _ func() store.Store) {
	d := &store.DeviceCode{UserCode: "WDJBMJHT", DeviceCodeHash: "dh", ClientID: "tv", Scope: "read", GrantID: "gd",
		Status: store.DevicePending, Interval: 5 * time.Second, ValidUntil: in(time.Minute), ExpiresAt: in(time.Minute)}
	must(t, s.CreateDeviceCode(ctx, d))
	again := *d
	again.GrantID = "gd2"
	wantErr(t, s.CreateDeviceCode(ctx, &again), store.ErrExists)
	got, err := s.DeviceCode(ctx, "WDJBMJHT")
	must(t, err)
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("got %+v, want %+v", got, d)
	}
	_, err = s.DeviceCode(ctx, "BCDFGHJK")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateDeviceCode(ctx, "BCDFGHJK", func(*store.DeviceCode) error { return nil })
	wantErr(t, err, store.ErrNotFound)

	// fn's error aborts without saving.
	boom := errors.New("boom")
	_, err = s.UpdateDeviceCode(ctx, "WDJBMJHT", func(d *store.DeviceCode) error {
		d.Status = store.DeviceDenied
		return boom
	})
	wantErr(t, err, boom)

	// Read-modify-write is atomic: 50 concurrent polls each add a second.
	wins, errs := concurrently(50, func(int) error {
		_, err := s.UpdateDeviceCode(ctx, "WDJBMJHT", func(d *store.DeviceCode) error {
			d.Interval += time.Second
			return nil
		})
		return err
	})
	if wins != 50 {
		t.Fatalf("%d of 50 updates succeeded: %v", wins, errs)
	}
	got, err = s.DeviceCode(ctx, "WDJBMJHT")
	must(t, err)
	if got.Status != store.DevicePending || got.Interval != 55*time.Second {
		t.Fatalf("after 50 updates got status %s interval %s, want pending 55s", got.Status, got.Interval)
	}
	got, err = s.UpdateDeviceCode(ctx, "WDJBMJHT", func(d *store.DeviceCode) error {
		d.Status, d.Subject = store.DeviceApproved, "mark"
		return nil
	})
	must(t, err)
	if got.Status != store.DeviceApproved || got.Subject != "mark" {
		t.Fatalf("update returned %+v", got)
	}
}

// newDevice stores a pending device authorization of grant, polled by
// client "tv" with hash "dh" every 5 s.
func newDevice(t *testing.T, s store.Store, grant, userCode string) *store.DeviceCode {
	t.Helper()
	d := &store.DeviceCode{UserCode: userCode, DeviceCodeHash: "dh", ClientID: "tv", Scope: "read", GrantID: grant,
		Status: store.DevicePending, Interval: 5 * time.Second, ValidUntil: in(time.Minute), ExpiresAt: in(2 * time.Minute)}
	must(t, s.CreateDeviceCode(ctx, d))
	return d
}

func testDevicePolls(t *testing.T, s store.Store, _ func() store.Store) {
	d := newDevice(t, s, "gp", "PLLPLLPL")
	now := time.Now().Truncate(time.Millisecond)
	poll := func(at time.Duration, first *store.Successor) (*store.DeviceCode, store.PollOutcome) {
		t.Helper()
		got, outcome, err := s.PollDeviceCode(ctx, store.DevicePoll{GrantID: "gp", Hash: "dh", ClientID: "tv", Now: now.Add(at), First: first})
		must(t, err)
		return got, outcome
	}
	for _, bad := range []store.DevicePoll{{GrantID: "gp", Hash: "other", ClientID: "tv"}, {GrantID: "gp", Hash: "dh", ClientID: "other"}, {GrantID: "nope", Hash: "dh", ClientID: "tv"}} {
		bad.Now = now
		_, _, err := s.PollDeviceCode(ctx, bad)
		wantErr(t, err, store.ErrNotFound)
	}
	got, outcome := poll(0, nil)
	if outcome != store.PollPending || !got.LastPoll.Equal(now) || got.GrantID != "gp" || got.UserCode != d.UserCode {
		t.Fatalf("first poll: %s %+v", outcome, got)
	}
	// 4 s later is within a fifth of the 5 s interval: fine.
	if _, outcome = poll(4*time.Second, nil); outcome != store.PollPending {
		t.Fatalf("poll 4 s after: %s", outcome)
	}
	// 3 s after that is too soon: the interval grows by 5 s, and stays.
	if got, outcome = poll(7*time.Second, nil); outcome != store.PollSlowDown || got.Interval != 10*time.Second {
		t.Fatalf("poll 3 s after: %s, interval %s", outcome, got.Interval)
	}
	if got, outcome = poll(14*time.Second, nil); outcome != store.PollSlowDown || got.Interval != 15*time.Second {
		t.Fatalf("poll 7 s after with a 10 s interval: %s, interval %s", outcome, got.Interval)
	}
	// The person's page sees the same record, and denies.
	seen, err := s.DeviceCode(ctx, d.UserCode)
	must(t, err)
	if seen.Interval != 15*time.Second || !seen.LastPoll.Equal(now.Add(14*time.Second)) {
		t.Fatalf("record after polls: %+v", seen)
	}
	_, err = s.UpdateDeviceCode(ctx, d.UserCode, func(d *store.DeviceCode) error { d.Status = store.DeviceDenied; return nil })
	must(t, err)
	if _, outcome = poll(30*time.Second, nil); outcome != store.PollDenied {
		t.Fatalf("poll after denial: %s", outcome)
	}
	// Past ValidUntil: expired, whatever the status.
	if _, outcome = poll(2*time.Minute, nil); outcome != store.PollExpired {
		t.Fatalf("poll after expiry: %s", outcome)
	}

	// An approved authorization is redeemed once, with its first refresh token.
	a := newDevice(t, s, "ga", "PPRVPPRV")
	_, err = s.UpdateDeviceCode(ctx, a.UserCode, func(d *store.DeviceCode) error {
		d.Status, d.Subject, d.AuthTime, d.OpenID = store.DeviceApproved, "mark", a.ValidUntil.Add(-time.Minute), person()
		return nil
	})
	must(t, err)
	first := successor("dev-first")
	wins, errs := concurrently(50, func(i int) error {
		next := successor(fmt.Sprint("dev", i))
		if i == 0 {
			next = first
		}
		_, outcome, err := s.PollDeviceCode(ctx, store.DevicePoll{GrantID: "ga", Hash: "dh", ClientID: "tv", Now: now, First: &next})
		if err == nil && outcome != store.PollRedeemed {
			err = fmt.Errorf("outcome %s", outcome)
		}
		return err
	})
	if wins != 1 {
		t.Fatalf("%d of 50 concurrent polls redeemed, want 1 (%v)", wins, errs[:min(3, len(errs))])
	}
	live := 0
	for i := range 50 {
		if _, err := s.RefreshToken(ctx, "ga", tok(fmt.Sprint("dev", i), 1)); err == nil {
			live++
		}
	}
	if _, err := s.RefreshToken(ctx, "ga", tok("dev-first", 1)); err == nil {
		live++
		wantRefresh(t, s, "ga", tok("dev-first", 1), first.Of("ga", "tv", "mark", "read", a.ValidUntil.Add(-time.Minute), "", person()))
	}
	if live != 1 {
		t.Fatalf("%d first refresh tokens stored, want 1", live)
	}
	if _, outcome, err = s.PollDeviceCode(ctx, store.DevicePoll{GrantID: "ga", Hash: "dh", ClientID: "tv", Now: now.Add(time.Minute)}); err != nil || outcome != store.PollUsed {
		t.Fatalf("poll after redemption: %s %v", outcome, err)
	}
}

func newRefresh(grant, hash string, ttl time.Duration) *store.RefreshToken {
	return &store.RefreshToken{GrantID: grant, Hash: hash, Gen: store.FirstGen, ClientID: "app", Subject: "mark", Scope: "read write",
		AuthTime: in(0), IssuedAt: in(0), ExpiresAt: in(ttl), OpenID: person()}
}

func testRefreshTokens(t *testing.T, s store.Store, _ func() store.Store) {
	first := newRefresh("g1", "r1", time.Hour)
	must(t, SeedRefreshToken(ctx, s, first))

	got, err := s.RefreshToken(ctx, "g1", tok("r1", 1))
	must(t, err)
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("RefreshToken = %+v, want %+v", got, first)
	}
	// A generation the grant has not reached, or a grant without refresh
	// state, is no token.
	_, err = s.RefreshToken(ctx, "g1", tok("r1", 2))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshToken(ctx, "g-none", tok("r1", 1))
	wantErr(t, err, store.ErrNotFound)

	// Another client's rotation is refused and leaves the token usable.
	got, err = s.RotateRefreshToken(ctx, "g1", tok("r1", 1), "intruder", successor("stolen"))
	must(t, err)
	if got.ClientID != "app" {
		t.Fatalf("a token must come back with its own client, got %+v", got)
	}
	wantRefresh(t, s, "g1", tok("stolen", 2), nil)
	wantRefresh(t, s, "g1", tok("r1", 1), first)

	next := successor("r2")
	got, err = s.RotateRefreshToken(ctx, "g1", tok("r1", 1), "app", next)
	must(t, err)
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("rotation returned %+v, want %+v", got, first)
	}
	// A rotated token reads as used.
	got, err = s.RefreshToken(ctx, "g1", tok("r1", 1))
	wantErr(t, err, store.ErrAlreadyUsed)
	if got == nil || got.GrantID != "g1" {
		t.Fatalf("a used token must still be returned, got %+v", got)
	}
	// The successor carries the grant on, one generation later, and
	// works once.
	second := next.Of("g1", "app", "mark", "read write", first.AuthTime, first.Resource, person())
	second.Gen, second.PrevHash, second.RotatedAt = 2, "r1", next.IssuedAt
	wantRefresh(t, s, "g1", tok("r2", 2), second)
	_, err = s.RotateRefreshToken(ctx, "g1", tok("r2", 2), "app", successor("r3"))
	must(t, err)

	// Reuse of a rotated token, of any generation, is reported with the
	// grant, and its would-be successor is not stored.
	for _, used := range []store.Presented{tok("r1", 1), tok("r2", 2)} {
		got, err = s.RotateRefreshToken(ctx, "g1", used, "app", successor("evil"))
		wantErr(t, err, store.ErrAlreadyUsed)
		if got == nil || got.GrantID != "g1" {
			t.Fatalf("reuse must return the token's grant, got %+v", got)
		}
		_, err = s.RefreshToken(ctx, "g1", tok("r3", 3))
		must(t, err)
	}
	_, err = s.RotateRefreshToken(ctx, "g1", tok("unknown", 4), "app", successor("y"))
	wantErr(t, err, store.ErrNotFound)
	// The same secret under another grant is another token.
	_, err = s.RotateRefreshToken(ctx, "g2", tok("r3", 3), "app", successor("z"))
	wantErr(t, err, store.ErrNotFound)
}

func testRefreshContention(t *testing.T, s store.Store, _ func() store.Store) {
	must(t, SeedRefreshToken(ctx, s, newRefresh("g", "r0", time.Hour)))
	wins, errs := concurrently(50, func(i int) error {
		_, err := s.RotateRefreshToken(ctx, "g", tok("r0", 1), "app", successor(fmt.Sprint("next", i)))
		return err
	})
	if wins != 1 {
		t.Fatalf("%d of 50 concurrent rotations won, want exactly 1", wins)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrAlreadyUsed)
	}
	// Exactly one successor exists.
	live := 0
	for i := range 50 {
		if _, err := s.RotateRefreshToken(ctx, "g", tok(fmt.Sprint("next", i), 2), "app", successor(fmt.Sprint("after", i))); err == nil {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d successors stored, want 1", live)
	}
}

// testMixedContention runs every single-use operation at once, 50 ways
// and more, different operations and different records side by side, as
// a store that commits concurrent writes together (the file store's group
// commit) sees them: codes, refresh tokens and jtis each presented three
// times at once, while a counter takes 50 increments and new codes are
// created. Each code, token and jti has exactly one winner; the losers
// get the single-use error, and the winners' writes all stay.
func testMixedContention(t *testing.T, s store.Store, _ func() store.Store) {
	const n, tries = 20, 3
	for i := range n {
		must(t, s.CreateCode(ctx, newCode(fmt.Sprint("mixed-code", i), time.Minute)))
		must(t, SeedRefreshToken(ctx, s, newRefresh(fmt.Sprint("mixed-g", i), fmt.Sprint("mixed-r", i), time.Hour)))
	}
	var mu sync.Mutex
	codeWins, tokenWins, jtiWins := map[int]int{}, map[int]int{}, map[int]int{}
	var failures []error
	win := func(m map[int]int, i int, err, lose error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			m[i]++
		case !errors.Is(err, lose):
			failures = append(failures, err)
		}
	}
	ops := []func(){}
	for i := range n {
		for try := range tries {
			ops = append(ops,
				func() {
					_, err := s.ConsumeCode(ctx, fmt.Sprint("g-mixed-code", i), fmt.Sprint("mixed-code", i), "app", ptr(successor(fmt.Sprint("mixed-first", i, "-", try))))
					win(codeWins, i, err, store.ErrAlreadyUsed)
				},
				func() {
					_, err := s.RotateRefreshToken(ctx, fmt.Sprint("mixed-g", i), tok(fmt.Sprint("mixed-r", i), 1), "app", successor(fmt.Sprint("mixed-next", i, "-", try)))
					win(tokenWins, i, err, store.ErrAlreadyUsed)
				},
				func() {
					// A jti's single use is its counter's first increment.
					c, _, err := s.Incr(ctx, fmt.Sprint("jti:mixed", i), time.Minute)
					if err == nil && c > 1 {
						err = store.ErrAlreadyUsed
					}
					win(jtiWins, i, err, store.ErrAlreadyUsed)
				})
		}
	}
	for i := range 50 {
		ops = append(ops, func() {
			if _, _, err := s.Incr(ctx, "mixed-burst", time.Minute); err != nil {
				win(nil, 0, err, nil)
			}
		}, func() {
			if err := s.CreateCode(ctx, newCode(fmt.Sprint("mixed-new", i), time.Minute)); err != nil {
				win(nil, 0, err, nil)
			}
		})
	}
	concurrently(len(ops), func(i int) error { ops[i](); return nil })
	if len(failures) > 0 {
		t.Fatalf("unexpected errors under contention: %v", failures)
	}
	for i := range n {
		if codeWins[i] != 1 || tokenWins[i] != 1 || jtiWins[i] != 1 {
			t.Fatalf("record %d: %d code, %d refresh token and %d jti winners, want exactly 1 each", i, codeWins[i], tokenWins[i], jtiWins[i])
		}
	}
	if c, _, err := s.Counter(ctx, "mixed-burst"); err != nil || c != 50 {
		t.Fatalf("50 concurrent increments made %d (%v)", c, err)
	}
	for i := range 50 {
		if _, err := s.ConsumeCode(ctx, fmt.Sprint("g-mixed-new", i), fmt.Sprint("mixed-new", i), "app", nil); err != nil {
			t.Fatalf("a code created under contention was lost: %v", err)
		}
	}
	// Exactly one successor of each code and token was stored.
	for i := range n {
		firsts, nexts := 0, 0
		for try := range tries {
			if _, err := s.RefreshToken(ctx, fmt.Sprint("g-mixed-code", i), tok(fmt.Sprint("mixed-first", i, "-", try), 1)); err == nil {
				firsts++
			}
			if _, err := s.RefreshToken(ctx, fmt.Sprint("mixed-g", i), tok(fmt.Sprint("mixed-next", i, "-", try), 2)); err == nil {
				nexts++
			}
		}
		if firsts != 1 || nexts != 1 {
			t.Fatalf("record %d: %d first refresh tokens and %d successors stored, want 1 each", i, firsts, nexts)
		}
	}
}

func testRevocations(t *testing.T, s store.Store, _ func() store.Store) {
	list, err := s.Revocations(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("new store has revocations %v", list)
	}
	at := in(0)
	want := map[string]store.Revocation{}
	for _, r := range []store.Revocation{
		{Kind: store.RevokeToken, Value: "jti-1", At: at, ExpiresAt: in(time.Hour)},
		{Kind: store.RevokeGrant, Value: "g1", At: at, ExpiresAt: in(time.Hour)},
		{Kind: store.RevokeClient, Value: "app", At: at, ExpiresAt: in(time.Hour)},
		{Kind: store.RevokeSubject, Value: "mark", At: at, ExpiresAt: in(time.Hour)},
		// A later client revocation replaces the earlier one.
		{Kind: store.RevokeClient, Value: "app", At: at.Add(time.Second), ExpiresAt: in(2 * time.Hour)},
	} {
		must(t, s.Revoke(ctx, r))
		want[string(r.Kind)+r.Value] = r
	}
	list, err = s.Revocations(ctx)
	must(t, err)
	if len(list) != len(want) {
		t.Fatalf("got %d revocations, want %d: %+v", len(list), len(want), list)
	}
	for _, r := range list {
		w := want[string(r.Kind)+r.Value]
		if !r.At.Equal(w.At) || !r.ExpiresAt.Equal(w.ExpiresAt) {
			t.Fatalf("got %+v, want %+v", r, w)
		}
	}
}

func testWatchRevocations(t *testing.T, s store.Store, _ func() store.Store) {
	wctx, cancel := context.WithCancel(ctx)
	got := make(chan store.Revocation, 10)
	synced := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchRevocations(wctx, func(r store.Revocation) { got <- r }, func() { synced <- struct{}{} })
	}()
	select {
	case <-synced:
	case <-time.After(5 * time.Second):
		t.Fatal("watching did not start with a resync")
	}
	rv := store.Revocation{Kind: store.RevokeToken, Value: "watched", At: in(0), ExpiresAt: in(time.Hour)}
	must(t, s.Revoke(ctx, rv))
	select {
	case r := <-got:
		if r.Kind != rv.Kind || r.Value != rv.Value || !r.ExpiresAt.Equal(rv.ExpiresAt) {
			t.Fatalf("watched %+v, want %+v", r, rv)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revocation was not delivered to the watcher")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WatchRevocations did not return when its context ended")
	}
}

func testClients(t *testing.T, s store.Store, _ func() store.Store) {
	_, err := s.Client(ctx, "none")
	wantErr(t, err, store.ErrNotFound)
	b := &store.Client{ID: "b", Name: "B", SecretHash: "sha256:x", RedirectURIs: []string{"https://b/cb"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"read"}, CreatedAt: in(0)}
	a := &store.Client{ID: "a", Name: "A", Public: true, GrantTypes: []string{"device_code"}, CreatedAt: in(0)}
	must(t, s.PutClient(ctx, b))
	must(t, s.PutClient(ctx, a))
	got, err := s.Client(ctx, "b")
	must(t, err)
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("got %+v, want %+v", got, b)
	}
	b.Name = "B2"
	must(t, s.PutClient(ctx, b))
	list, err := s.Clients(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" || list[1].Name != "B2" {
		t.Fatalf("Clients() = %+v", list)
	}
	if n, err := s.CountClients(ctx); err != nil || n != 2 {
		t.Fatalf("CountClients() = %d, %v; want 2", n, err)
	}
	must(t, s.DeleteClient(ctx, "a"))
	if n, err := s.CountClients(ctx); err != nil || n != 1 {
		t.Fatalf("CountClients() after a delete = %d, %v; want 1", n, err)
	}
	wantErr(t, s.DeleteClient(ctx, "a"), store.ErrNotFound)
	list, err = s.Clients(ctx)
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("after delete: %+v", list)
	}

	// UpdateClient edits the stored client: what fn leaves alone stays,
	// including a change made after the caller last read the client.
	wantErr(t, s.UpdateClient(ctx, "a", func(*store.Client) error { return nil }), store.ErrNotFound)
	b.SecretHash = "sha256:rotated"
	must(t, s.PutClient(ctx, b))
	used := in(time.Minute)
	must(t, s.UpdateClient(ctx, "b", func(c *store.Client) error { c.LastUsedAt = used; return nil }))
	got, err = s.Client(ctx, "b")
	must(t, err)
	want := *b
	want.LastUsedAt = used
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("after UpdateClient: got %+v, want %+v", got, &want)
	}
	// fn's error aborts the update.
	refused := errors.New("refused")
	wantErr(t, s.UpdateClient(ctx, "b", func(c *store.Client) error { c.Name = "lost"; return refused }), refused)
	// Updates from many goroutines at once, each to a field of its own:
	// none is lost.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			must(t, s.UpdateClient(ctx, "b", func(c *store.Client) error {
				c.RedirectURIs = append(c.RedirectURIs, fmt.Sprintf("https://b/cb%d", i))
				return nil
			}))
		})
	}
	wg.Go(func() {
		must(t, s.UpdateClient(ctx, "b", func(c *store.Client) error { c.Name = "B3"; return nil }))
	})
	wg.Wait()
	got, err = s.Client(ctx, "b")
	must(t, err)
	if got.Name != "B3" || got.SecretHash != "sha256:rotated" || len(got.RedirectURIs) != 9 || !got.LastUsedAt.Equal(used) {
		t.Fatalf("after concurrent updates: %+v", got)
	}
}

// newGrant is a grant of subject to client, recorded as at approval:
// pending, its record expiring with the code.
func newGrant(id, subject, client string, created time.Time) *store.Grant {
	return &store.Grant{ID: id, Subject: subject, ClientID: client, Scope: "read", Resource: "https://api.example/", Login: "password",
		CreatedAt: created, ExpiresAt: in(time.Minute), EndsBy: created.Add(90 * 24 * time.Hour), OpenID: person()}
}

// wantGrants checks that q lists exactly ids, in that order.
func wantGrants(t *testing.T, s store.Store, q store.GrantQuery, ids ...string) []*store.Grant {
	t.Helper()
	got, err := s.Grants(ctx, q)
	must(t, err)
	var gotIDs []string
	for _, g := range got {
		gotIDs = append(gotIDs, g.ID)
	}
	if !slices.Equal(gotIDs, ids) {
		t.Fatalf("grants of %+v = %q, want %q", q, gotIDs, ids)
	}
	return got
}

func testGrants(t *testing.T, s store.Store, _ func() store.Store) {
	if _, err := s.Grants(ctx, store.GrantQuery{}); err == nil {
		t.Fatal("grants of nobody: no error")
	}
	_, err := s.Grant(ctx, "g-none")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteGrant(ctx, "g-none"), store.ErrNotFound)

	// Recorded at approval, a grant is not listed until its code is
	// redeemed: the redemption notes the use in the same step.
	// Recorded with its code (CreateCode with Grant), in one step.
	c := newCode("gi1", time.Minute)
	g1 := newGrant(c.GrantID, "mark", "app", in(-time.Hour))
	c.Grant = g1
	must(t, s.CreateCode(ctx, c))
	wantErr(t, s.CreateCode(ctx, c), store.ErrExists)
	c.Grant = nil
	got, err := s.Grant(ctx, g1.ID)
	must(t, err)
	if !reflect.DeepEqual(got, g1) {
		t.Fatalf("grant %+v, want %+v", got, g1)
	}
	wantGrants(t, s, store.GrantQuery{Subject: "mark"})
	first := successor("gi1-rt")
	_, err = s.ConsumeCode(ctx, c.GrantID, "gi1", "app", &first)
	must(t, err)
	used := wantGrants(t, s, store.GrantQuery{Subject: "mark"}, g1.ID)[0]
	want := *g1
	want.LastUsedAt, want.ExpiresAt = first.IssuedAt, first.ExpiresAt.Add(store.GrantTouchInterval)
	if !reflect.DeepEqual(used, &want) {
		t.Fatalf("after redemption %+v, want %+v", used, &want)
	}

	// A second grant, of another person, newer: the client lists both,
	// newest first; each person only their own.
	c2 := newCode("gi2", time.Minute)
	c2.Subject = "carol"
	must(t, s.PutGrant(ctx, newGrant(c2.GrantID, "carol", "app", in(-time.Minute))))
	must(t, s.CreateCode(ctx, c2))
	_, err = s.ConsumeCode(ctx, c2.GrantID, "gi2", "app", nil) // no refresh tokens: now is the use
	must(t, err)
	g2 := wantGrants(t, s, store.GrantQuery{Subject: "carol"}, c2.GrantID)[0]
	if time.Since(g2.LastUsedAt) > 5*time.Second || !g2.ExpiresAt.Equal(in(time.Minute)) && g2.ExpiresAt.Sub(in(time.Minute)).Abs() > 5*time.Second {
		t.Fatalf("a use without a successor is noted now and does not extend the record: %+v", g2)
	}
	wantGrants(t, s, store.GrantQuery{ClientID: "app"}, c2.GrantID, g1.ID)
	wantGrants(t, s, store.GrantQuery{ClientID: "app", Limit: 1}, c2.GrantID)
	wantGrants(t, s, store.GrantQuery{Subject: "mark"}, g1.ID)
	wantGrants(t, s, store.GrantQuery{ClientID: "other"})
	// Names with separators do not reach other people's index.
	wantGrants(t, s, store.GrantQuery{Subject: "mark app"})
	// A person's grants to one client: mark's to web are not app's.
	web := newGrant("g-gi-web", "mark", "web", in(-time.Second))
	web.LastUsedAt = in(0)
	must(t, s.PutGrant(ctx, web))
	wantGrants(t, s, store.GrantQuery{Subject: "mark"}, web.ID, g1.ID)
	wantGrants(t, s, store.GrantQuery{Subject: "mark", ClientID: "app"}, g1.ID)
	wantGrants(t, s, store.GrantQuery{Subject: "mark", ClientID: "web"}, web.ID)
	wantGrants(t, s, store.GrantQuery{Subject: "mark", ClientID: "app web"})

	// Who acts with a grant's tokens: each once, most recent last, at
	// most MaxGrantActors; how it was given, kept.
	wantErr(t, s.AddGrantActor(ctx, "g-none", "orders"), store.ErrNotFound)
	for _, a := range []string{"orders", "billing", "orders"} {
		must(t, s.AddGrantActor(ctx, web.ID, a))
	}
	got, err = s.Grant(ctx, web.ID)
	must(t, err)
	if !slices.Equal(got.Actors, []string{"billing", "orders"}) || got.LastUsedAt.IsZero() || got.ClientID != "web" {
		t.Fatalf("actors %q of %+v", got.Actors, got)
	}
	for i := range store.MaxGrantActors + 2 {
		must(t, s.AddGrantActor(ctx, web.ID, fmt.Sprintf("svc-%d", i)))
	}
	if got, err = s.Grant(ctx, web.ID); err != nil || len(got.Actors) != store.MaxGrantActors || got.Actors[store.MaxGrantActors-1] != fmt.Sprintf("svc-%d", store.MaxGrantActors+1) {
		t.Fatalf("past the bound: %q %v", got.Actors, err)
	}
	agent := newGrant("g-gi-agent", "mark", "agent", in(-time.Second))
	agent.LastUsedAt, agent.Via, agent.Actors = in(0), store.ViaIDJAG, []string{"mcp-tool"}
	must(t, s.PutGrant(ctx, agent))
	if got, err = s.Grant(ctx, agent.ID); err != nil || !reflect.DeepEqual(got, agent) {
		t.Fatalf("a delegated grant %+v, want %+v (%v)", got, agent, err)
	}
	must(t, s.DeleteGrant(ctx, agent.ID))
	must(t, s.DeleteGrant(ctx, web.ID))

	// Deleting forgets the record and both entries.
	must(t, s.DeleteGrant(ctx, g1.ID))
	_, err = s.Grant(ctx, g1.ID)
	wantErr(t, err, store.ErrNotFound)
	wantGrants(t, s, store.GrantQuery{Subject: "mark"})
	wantGrants(t, s, store.GrantQuery{ClientID: "app"}, c2.GrantID)
	wantErr(t, s.DeleteGrant(ctx, g1.ID), store.ErrNotFound)
	// and a later use of the deleted grant's tokens brings nothing back.
	_, err = s.RotateRefreshToken(ctx, g1.ID, tok("gi1-rt", 1), "app", successor("gi1-rt2"))
	must(t, err)
	_, err = s.Grant(ctx, g1.ID)
	wantErr(t, err, store.ErrNotFound)

	// A record expires at its ExpiresAt, index or not.
	g3 := newGrant("g-short", "mark", "app", in(0))
	g3.LastUsedAt, g3.ExpiresAt = in(0), in(50*time.Millisecond)
	must(t, s.PutGrant(ctx, g3))
	wantGrants(t, s, store.GrantQuery{Subject: "mark"}, g3.ID)
	time.Sleep(100 * time.Millisecond)
	wantGrants(t, s, store.GrantQuery{Subject: "mark"})
	_, err = s.Grant(ctx, g3.ID)
	wantErr(t, err, store.ErrNotFound)
}

func testGrantUses(t *testing.T, s store.Store, _ func() store.Store) {
	c := newCode("gu", time.Minute)
	must(t, s.PutGrant(ctx, newGrant(c.GrantID, "mark", "app", in(0))))
	must(t, s.CreateCode(ctx, c))
	t0 := in(0)
	at := func(d time.Duration, hash string) store.Successor {
		return store.Successor{Hash: hash, IssuedAt: t0.Add(d), ExpiresAt: t0.Add(d + time.Hour)}
	}
	first := at(0, "r0")
	_, err := s.ConsumeCode(ctx, c.GrantID, "gu", "app", &first)
	must(t, err)
	lastUsed := func() *store.Grant {
		t.Helper()
		g, err := s.Grant(ctx, c.GrantID)
		must(t, err)
		return g
	}
	// A refresh within GrantTouchInterval writes nothing to the grant;
	// one after it moves LastUsedAt and the record's expiry.
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("r0", 1), "app", at(30*time.Second, "r1"))
	must(t, err)
	if g := lastUsed(); !g.LastUsedAt.Equal(t0) || !g.ExpiresAt.Equal(t0.Add(time.Hour+store.GrantTouchInterval)) {
		t.Fatalf("a refresh 30 s after the last noted use changed the grant: %+v", g)
	}
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("r1", 2), "app", at(90*time.Second, "r2"))
	must(t, err)
	if g := lastUsed(); !g.LastUsedAt.Equal(t0.Add(90*time.Second)) || !g.ExpiresAt.Equal(t0.Add(90*time.Second+time.Hour+store.GrantTouchInterval)) {
		t.Fatalf("a refresh 90 s after was not noted: %+v", g)
	}
	// A refused rotation (another client's, a reuse) notes nothing.
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("r2", 3), "intruder", at(10*time.Minute, "x"))
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("r0", 1), "app", at(20*time.Minute, "y"))
	wantErr(t, err, store.ErrAlreadyUsed)
	if g := lastUsed(); !g.LastUsedAt.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("a refused rotation was noted: %+v", g)
	}

	// A device redemption notes its use; polls before it do not.
	d := newDevice(t, s, "g-dev", "GRNTGRNT")
	must(t, s.PutGrant(ctx, newGrant("g-dev", "mark", "tv", in(0))))
	poll := func(at time.Duration, first *store.Successor) store.PollOutcome {
		t.Helper()
		_, outcome, err := s.PollDeviceCode(ctx, store.DevicePoll{GrantID: "g-dev", Hash: "dh", ClientID: "tv", Now: t0.Add(at), First: first})
		must(t, err)
		return outcome
	}
	if poll(0, nil) != store.PollPending {
		t.Fatal("first poll not pending")
	}
	wantGrants(t, s, store.GrantQuery{ClientID: "tv"})
	_, err = s.UpdateDeviceCode(ctx, d.UserCode, func(d *store.DeviceCode) error {
		d.Status, d.Subject = store.DeviceApproved, "mark"
		return nil
	})
	must(t, err)
	devFirst := at(10*time.Second, "dr")
	if poll(10*time.Second, &devFirst) != store.PollRedeemed {
		t.Fatal("approved device not redeemed")
	}
	if g := wantGrants(t, s, store.GrantQuery{ClientID: "tv"}, "g-dev")[0]; !g.LastUsedAt.Equal(devFirst.IssuedAt) {
		t.Fatalf("device redemption noted at %s, want %s", g.LastUsedAt, devFirst.IssuedAt)
	}
	wantGrants(t, s, store.GrantQuery{Subject: "mark"}, "g-dev", c.GrantID)

	// Uses of a grant without a record write none.
	c2 := newCode("gu2", time.Minute)
	must(t, s.CreateCode(ctx, c2))
	_, err = s.ConsumeCode(ctx, c2.GrantID, "gu2", "app", ptr(successor("gu2-rt")))
	must(t, err)
	_, err = s.Grant(ctx, c2.GrantID)
	wantErr(t, err, store.ErrNotFound)
}

func testGrantIndexBounded(t *testing.T, s store.Store, _ func() store.Store) {
	base := in(-time.Hour)
	for i := range store.MaxGrantsPerSubject + 5 {
		g := newGrant(fmt.Sprintf("g-%04d", i), "eager", "app", base.Add(time.Duration(i)*time.Second))
		g.LastUsedAt, g.ExpiresAt = in(0), in(time.Hour)
		must(t, s.PutGrant(ctx, g))
	}
	got, err := s.Grants(ctx, store.GrantQuery{Subject: "eager"})
	must(t, err)
	if len(got) != store.MaxGrantsPerSubject || got[0].ID != fmt.Sprintf("g-%04d", store.MaxGrantsPerSubject+4) || got[len(got)-1].ID != "g-0005" {
		t.Fatalf("the subject's index holds %d grants (%s…%s), want the latest %d", len(got), got[0].ID, got[len(got)-1].ID, store.MaxGrantsPerSubject)
	}
	// The entries dropped from the subject's index left the client's too.
	byClient, err := s.Grants(ctx, store.GrantQuery{ClientID: "app", Limit: 1000})
	must(t, err)
	if len(byClient) != store.MaxGrantsPerSubject {
		t.Fatalf("the client's index holds %d grants, want %d", len(byClient), store.MaxGrantsPerSubject)
	}
}

// testRates: a shared budget of 3 a second lets 3 through at once, then
// refuses (taking nothing) until a request's worth has come back; budgets
// of other keys are their own.
func testRates(t *testing.T, s store.Store, _ func() store.Store) {
	const n, period = 3, 600 * time.Millisecond
	for i := range n {
		r, err := s.AllowRate(ctx, "rl:a", n, period)
		must(t, err)
		if !r.Allowed || r.Remaining != n-1-i {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	var refused store.RateResult
	for range 3 {
		r, err := s.AllowRate(ctx, "rl:a", n, period)
		must(t, err)
		if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > period/n+50*time.Millisecond || r.Remaining != 0 {
			t.Fatalf("over the budget: %+v", r)
		}
		refused = r
	}
	if r, err := s.AllowRate(ctx, "rl:b", n, period); err != nil || !r.Allowed || r.Remaining != n-1 {
		t.Fatalf("another key: %+v %v", r, err)
	}
	// The refusals took nothing: one request's worth later, one goes.
	time.Sleep(refused.RetryAfter + 20*time.Millisecond)
	r, err := s.AllowRate(ctx, "rl:a", n, period)
	must(t, err)
	if !r.Allowed {
		t.Fatalf("after %s: %+v", refused.RetryAfter, r)
	}
	if r, _ := s.AllowRate(ctx, "rl:a", n, period); r.Allowed {
		t.Fatalf("two allowed after one request's worth: %+v", r)
	}
}

func testCounters(t *testing.T, s store.Store, _ func() store.Store) {
	if n, _, err := s.Counter(ctx, "login:mark"); err != nil || n != 0 {
		t.Fatalf("Counter of a new key = %d, %v", n, err)
	}
	start := time.Now()
	var firstReset time.Time
	for want := int64(1); want <= 3; want++ {
		n, reset, err := s.Incr(ctx, "login:mark", time.Minute)
		must(t, err)
		if n != want {
			t.Fatalf("Incr = %d, want %d", n, want)
		}
		// The window is fixed: it ends a minute after the first increment.
		if reset.Before(start.Add(58*time.Second)) || reset.After(time.Now().Add(time.Minute+time.Second)) {
			t.Fatalf("window ends at %s, want about a minute from %s", reset, start)
		}
		if firstReset.IsZero() {
			firstReset = reset
		} else if d := reset.Sub(firstReset); d > 50*time.Millisecond || d < -50*time.Millisecond {
			t.Fatalf("the window moved from %s to %s", firstReset, reset)
		}
	}
	n, reset, err := s.Counter(ctx, "login:mark")
	must(t, err)
	if d := reset.Sub(firstReset); n != 3 || d > 50*time.Millisecond || d < -50*time.Millisecond {
		t.Fatalf("Counter = %d ending %s, want 3 ending %s", n, reset, firstReset)
	}
	wins, errs := concurrently(50, func(int) error {
		_, _, err := s.Incr(ctx, "burst", time.Minute)
		return err
	})
	if wins != 50 {
		t.Fatalf("concurrent increments failed: %v", errs)
	}
	n, _, err = s.Incr(ctx, "burst", time.Minute)
	must(t, err)
	if n != 51 {
		t.Fatalf("after 50 concurrent increments and one more the counter is %d, want 51", n)
	}
}

// testExpiry checks that everything that has a TTL is gone once it passes.
func testExpiry(t *testing.T, s store.Store, _ func() store.Store) {
	const ttl = 300 * time.Millisecond
	must(t, s.CreateCode(ctx, newCode("short", ttl)))
	must(t, s.CreateDeviceCode(ctx, &store.DeviceCode{UserCode: "SHRT", GrantID: "g-shrt", Status: store.DevicePending, ExpiresAt: in(ttl)}))
	must(t, SeedRefreshToken(ctx, s, newRefresh("gs", "rs", ttl)))
	must(t, s.Revoke(ctx, store.Revocation{Kind: store.RevokeToken, Value: "short", At: in(0), ExpiresAt: in(ttl)}))
	must(t, s.Revoke(ctx, store.Revocation{Kind: store.RevokeToken, Value: "long", At: in(0), ExpiresAt: in(time.Hour)}))
	_, _, err := s.Incr(ctx, "window", ttl)
	must(t, err)

	// Still there before the TTL.
	if _, err := s.DeviceCode(ctx, "SHRT"); err != nil {
		t.Fatalf("device code gone before its TTL: %v", err)
	}
	time.Sleep(ttl + 200*time.Millisecond)

	_, err = s.ConsumeCode(ctx, "g-short", "short", "app", nil)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeviceCode(ctx, "SHRT")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RotateRefreshToken(ctx, "gs", tok("rs", 1), "app", successor("rs2"))
	wantErr(t, err, store.ErrNotFound)
	list, err := s.Revocations(ctx)
	must(t, err)
	if len(list) != 1 || list[0].Value != "long" {
		t.Fatalf("revocations after expiry: %+v", list)
	}
	if n, _, err := s.Counter(ctx, "window"); err != nil || n != 0 {
		t.Fatalf("Counter after its window = %d, %v", n, err)
	}
	n, _, err := s.Incr(ctx, "window", ttl)
	must(t, err)
	if n != 1 {
		t.Fatalf("counter after its window = %d, want a new window at 1", n)
	}
	// An expired create-only key can be created again.
	must(t, s.CreateDeviceCode(ctx, &store.DeviceCode{UserCode: "SHRT", GrantID: "g-shrt2", Status: store.DevicePending, ExpiresAt: in(time.Minute)}))
}

func testPersistence(t *testing.T, s store.Store, reopen func() store.Store) {
	must(t, s.SwapKeys(ctx, 0, &store.KeyRing{Keys: []store.SigningKey{{ID: "k", Alg: "EdDSA", JWK: []byte(`{}`)}}}))
	must(t, s.CreateCode(ctx, newCode("c", time.Hour)))
	must(t, SeedRefreshToken(ctx, s, newRefresh("g", "r", time.Hour)))
	must(t, s.Revoke(ctx, store.Revocation{Kind: store.RevokeGrant, Value: "g0", At: in(0), ExpiresAt: in(time.Hour)}))
	must(t, s.PutClient(ctx, &store.Client{ID: "app", Name: "App"}))
	must(t, s.CreateDeviceCode(ctx, &store.DeviceCode{UserCode: "ABCD", GrantID: "g-abcd", ExpiresAt: in(time.Hour)}))
	_, _, err := s.Incr(ctx, "n", time.Hour)
	must(t, err)

	s = reopen()

	ring, err := s.Keys(ctx)
	must(t, err)
	if ring.Version != 1 || len(ring.Keys) != 1 || ring.Keys[0].ID != "k" {
		t.Fatalf("key ring after reopen: %+v", ring)
	}
	_, err = s.ConsumeCode(ctx, "g-c", "c", "app", nil)
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, "g", tok("r", 1), "app", successor("r2"))
	must(t, err)
	list, err := s.Revocations(ctx)
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("revocations after reopen: %+v", list)
	}
	_, err = s.Client(ctx, "app")
	must(t, err)
	_, err = s.DeviceCode(ctx, "ABCD")
	must(t, err)
	n, _, err := s.Incr(ctx, "n", time.Hour)
	must(t, err)
	if n != 2 {
		t.Fatalf("counter after reopen = %d, want 2", n)
	}
}

// Sizer is what the contract asks of a store besides store.Store, so that
// it can hold the store to bounds: how many records it holds and their
// bytes.
type Sizer interface {
	Size(ctx context.Context) (records int, bytes int64, err error)
}

// testRefreshBounded checks that a grant's state does not grow with its
// rotations (store.RefreshStore), while every earlier token of it is still
// known as used.
func testRefreshBounded(t *testing.T, s store.Store, _ func() store.Store) {
	sizer, ok := s.(Sizer)
	if !ok {
		t.Fatalf("%T has no Size method: the contract cannot check that its state is bounded", s)
	}
	size := func() (int, int64) {
		t.Helper()
		n, b, err := sizer.Size(ctx)
		must(t, err)
		return n, b
	}
	hash := func(i int) string { return fmt.Sprintf("%043d", i) } // as long as a real hash
	c := newCode("bounded", time.Minute)
	must(t, s.CreateCode(ctx, c))
	_, err := s.ConsumeCode(ctx, c.GrantID, c.Hash, "app", ptr(successor(hash(1))))
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok(hash(1), 1), "app", successor(hash(2)))
	must(t, err)
	records, bytes := size()
	const rotations = 300
	for i := 2; i < rotations; i++ {
		_, err := s.RotateRefreshToken(ctx, c.GrantID, tok(hash(i), uint64(i)), "app", successor(hash(i+1)))
		must(t, err)
	}
	after, afterBytes := size()
	// Room for the generation's digits and an allocator's size classes;
	// a record per rotation would be 300 records and tens of kilobytes.
	if after != records || afterBytes > bytes+bytes/4+64 {
		t.Fatalf("after %d rotations the store holds %d records of %d bytes; after one, %d of %d", rotations, after, afterBytes, records, bytes)
	}
	for _, i := range []int{1, 2, rotations / 2, rotations - 1} {
		_, err := s.RefreshToken(ctx, c.GrantID, tok(hash(i), uint64(i)))
		wantErr(t, err, store.ErrAlreadyUsed)
	}
	_, err = s.RefreshToken(ctx, c.GrantID, tok(hash(rotations), rotations))
	must(t, err)
}

// RunLegacy checks that refresh tokens from before generations (each a
// record of its own, which only a store's own tests can write: seed
// stores t, used or not, as the store's earlier version did) keep working
// until they rotate, and that their rotation moves the grant into a
// refresh state of which they are the previous token.
func RunLegacy(t *testing.T, s store.Store, seed func(t *store.RefreshToken, used bool) error) {
	// Those records are older than OpenID Connect.
	newRefresh := func(grant, hash string, ttl time.Duration) *store.RefreshToken {
		r := newRefresh(grant, hash, ttl)
		r.OpenID = nil
		return r
	}
	legacy := newRefresh("gl", "l0", time.Hour)
	legacy.Gen = 0
	must(t, seed(legacy, false))
	got, err := s.RefreshToken(ctx, "gl", tok("l0", 0))
	must(t, err)
	if !reflect.DeepEqual(got, legacy) {
		t.Fatalf("RefreshToken of a legacy token = %+v, want %+v", got, legacy)
	}
	// Another client's rotation leaves it as it is.
	_, err = s.RotateRefreshToken(ctx, "gl", tok("l0", 0), "intruder", successor("stolen"))
	must(t, err)
	wantRefresh(t, s, "gl", tok("stolen", 1), nil)
	// Its rotation starts the refresh state at generation 1.
	n1 := graced("n1", 0)
	got, err = s.RotateRefreshToken(ctx, "gl", tok("l0", 0), "app", n1)
	must(t, err)
	if !reflect.DeepEqual(got, legacy) {
		t.Fatalf("rotating a legacy token returned %+v, want %+v", got, legacy)
	}
	want := n1.Of("gl", "app", "mark", "read write", legacy.AuthTime, "", legacy.OpenID)
	want.PrevHash, want.RotatedAt = "l0", n1.IssuedAt
	wantRefresh(t, s, "gl", tok("n1", 1), want)
	_, err = s.RefreshToken(ctx, "gl", tok("l0", 0))
	wantErr(t, err, store.ErrAlreadyUsed)
	// A retry of it within the grace replaces n1; later, it is reuse.
	_, err = s.RotateRefreshToken(ctx, "gl", tok("l0", 0), "app", graced("n2", time.Second))
	must(t, err)
	wantRefresh(t, s, "gl", tok("n1", 1), nil)
	_, err = s.RotateRefreshToken(ctx, "gl", tok("n2", 1), "app", graced("n3", 2*time.Second))
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, "gl", tok("l0", 0), "app", graced("n4", 3*time.Second))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RefreshToken(ctx, "gl", tok("n3", 2))
	must(t, err)

	// A legacy token used before the upgrade is reuse; an unknown one is
	// nothing (no MAC says it was ever issued).
	used := newRefresh("gu", "u0", time.Hour)
	used.Gen = 0
	must(t, seed(used, true))
	_, err = s.RotateRefreshToken(ctx, "gu", tok("u0", 0), "app", successor("u1"))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RotateRefreshToken(ctx, "gu", tok("unknown", 0), "app", successor("u2"))
	wantErr(t, err, store.ErrNotFound)

	// A bound legacy token wants its key, and binds its successor to it.
	bound := newRefresh("gb", "b0", time.Hour)
	bound.Gen, bound.JKT = 0, "key-a"
	must(t, seed(bound, false))
	_, err = s.RotateRefreshToken(ctx, "gb", tok("b0", 0), "app", successor("b1"))
	wantErr(t, err, store.ErrKeyMismatch)
	next := successor("b1")
	next.JKT = "key-a"
	_, err = s.RotateRefreshToken(ctx, "gb", tok("b0", 0), "app", next)
	must(t, err)
	got, err = s.RefreshToken(ctx, "gb", tok("b1", 1))
	must(t, err)
	if got.JKT != "key-a" {
		t.Fatalf("a legacy token's successor lost its key: %+v", got)
	}
}

// testRefreshRetry checks that a client retrying a rotation whose answer it never got
// keeps its grant (store.Successor's grace); anything else is reuse.
func testRefreshRetry(t *testing.T, s store.Store, _ func() store.Store) {
	r0 := newRefresh("gr", "r0", time.Hour)
	must(t, SeedRefreshToken(ctx, s, r0))
	r1 := graced("r1", 0)
	_, err := s.RotateRefreshToken(ctx, "gr", tok("r0", 1), "app", r1)
	must(t, err)
	// The retry replaces r1, which nobody got, in generation 2.
	r2 := graced("r2", time.Second)
	got, err := s.RotateRefreshToken(ctx, "gr", tok("r0", 1), "app", r2)
	must(t, err)
	if got.ClientID != "app" || got.GrantID != "gr" {
		t.Fatalf("retry returned %+v", got)
	}
	// r1 is retired: whoever holds it triggers reuse detection.
	_, err = s.RefreshToken(ctx, "gr", tok("r1", 2))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RotateRefreshToken(ctx, "gr", tok("r1", 2), "app", graced("r1x", time.Second))
	wantErr(t, err, store.ErrAlreadyUsed)
	want := r2.Of("gr", "app", "mark", "read write", r0.AuthTime, "", r0.OpenID)
	want.Gen, want.PrevHash, want.RotatedAt = 2, "r0", r1.IssuedAt
	wantRefresh(t, s, "gr", tok("r2", 2), want)
	// Another client's replay is reuse.
	_, err = s.RotateRefreshToken(ctx, "gr", tok("r0", 1), "intruder", graced("x", 2*time.Second))
	wantErr(t, err, store.ErrAlreadyUsed)
	wantRefresh(t, s, "gr", tok("x", 2), nil)
	// Once r2 is used, r0 can no longer be retried.
	_, err = s.RotateRefreshToken(ctx, "gr", tok("r2", 2), "app", graced("r3", 3*time.Second))
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, "gr", tok("r0", 1), "app", graced("r4", 4*time.Second))
	wantErr(t, err, store.ErrAlreadyUsed)
	wantRefresh(t, s, "gr", tok("r4", 2), nil)
	_, err = s.RefreshToken(ctx, "gr", tok("r3", 3))
	must(t, err)
	// r1, retired, is reuse still; r2, the previous token now, may be
	// retried within its own grace while r3 is unused.
	_, err = s.RotateRefreshToken(ctx, "gr", tok("r1", 2), "app", graced("r5", 4*time.Second))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RotateRefreshToken(ctx, "gr", tok("r2", 2), "app", graced("r6", 4*time.Second))
	must(t, err)
	wantRefresh(t, s, "gr", tok("r3", 3), nil)
	_, err = s.RefreshToken(ctx, "gr", tok("r6", 3))
	must(t, err)

	// Past the grace, or without one, a retry is reuse.
	must(t, SeedRefreshToken(ctx, s, newRefresh("gq", "q0", time.Hour)))
	_, err = s.RotateRefreshToken(ctx, "gq", tok("q0", 1), "app", graced("q1", 0))
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, "gq", tok("q0", 1), "app", graced("q2", 2*time.Minute))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RotateRefreshToken(ctx, "gq", tok("q0", 1), "app", successor("q3"))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RefreshToken(ctx, "gq", tok("q1", 2))
	must(t, err)

	// A code is never redeemed twice, whatever the grace.
	c := newCode("retry", time.Minute)
	must(t, s.CreateCode(ctx, c))
	first := graced("c1", 0)
	_, err = s.ConsumeCode(ctx, c.GrantID, "retry", "app", &first)
	must(t, err)
	again := graced("c2", time.Second)
	_, err = s.ConsumeCode(ctx, c.GrantID, "retry", "app", &again)
	wantErr(t, err, store.ErrAlreadyUsed)
	wantRefresh(t, s, c.GrantID, tok("c2", 1), nil)
	_, err = s.RefreshToken(ctx, c.GrantID, tok("c1", 1))
	must(t, err)
}

// testRefreshRetryAnchored checks that the grace runs from the token's first use;
// retries within it do not move its end.
func testRefreshRetryAnchored(t *testing.T, s store.Store, _ func() store.Store) {
	must(t, SeedRefreshToken(ctx, s, newRefresh("ga", "a0", time.Hour)))
	_, err := s.RotateRefreshToken(ctx, "ga", tok("a0", 1), "app", graced("a1", 0))
	must(t, err)
	_, err = s.RotateRefreshToken(ctx, "ga", tok("a0", 1), "app", graced("a2", 40*time.Second))
	must(t, err)
	// 80 s after the first use: within a minute of the last retry, but
	// not of the first use, so it is reuse.
	_, err = s.RotateRefreshToken(ctx, "ga", tok("a0", 1), "app", graced("a3", 80*time.Second))
	wantErr(t, err, store.ErrAlreadyUsed)
	wantRefresh(t, s, "ga", tok("a3", 2), nil)
}

// testGrantMaxAge checks that a successor never outlives its grant's MaxAge from the
// authentication time, whatever its own ExpiresAt; every store derives it.
func testGrantMaxAge(t *testing.T, s store.Store, _ func() store.Store) {
	old := newRefresh("gm", "m0", time.Hour)
	old.AuthTime = in(-50 * time.Minute)
	must(t, SeedRefreshToken(ctx, s, old))
	next := store.Successor{Hash: "m1", IssuedAt: in(0), ExpiresAt: in(time.Hour), MaxAge: time.Hour}
	_, err := s.RotateRefreshToken(ctx, "gm", tok("m0", 1), "app", next)
	must(t, err)
	got, err := s.RefreshToken(ctx, "gm", tok("m1", 2))
	must(t, err)
	if want := old.AuthTime.Add(time.Hour); !got.ExpiresAt.Equal(want) {
		t.Fatalf("successor expires %v, want the grant's end %v", got.ExpiresAt, want)
	}
	// A grant already past its age gets a successor that is dead at once.
	gone := newRefresh("gn", "n0", time.Hour)
	gone.AuthTime = in(-2 * time.Hour)
	must(t, SeedRefreshToken(ctx, s, gone))
	_, err = s.RotateRefreshToken(ctx, "gn", tok("n0", 1), "app", store.Successor{Hash: "n1", IssuedAt: in(0), ExpiresAt: in(time.Hour), MaxAge: time.Hour})
	must(t, err)
	time.Sleep(20 * time.Millisecond)
	_, err = s.RefreshToken(ctx, "gn", tok("n1", 2))
	wantErr(t, err, store.ErrNotFound)
	// The code's and the device's first refresh tokens are capped too.
	c := newCode("mc", time.Minute)
	c.AuthTime = in(-30 * time.Minute)
	must(t, s.CreateCode(ctx, c))
	first := store.Successor{Hash: "mc1", IssuedAt: in(0), ExpiresAt: in(time.Hour), MaxAge: time.Hour}
	_, err = s.ConsumeCode(ctx, c.GrantID, "mc", "app", &first)
	must(t, err)
	got, err = s.RefreshToken(ctx, c.GrantID, tok("mc1", 1))
	must(t, err)
	if want := c.AuthTime.Add(time.Hour); !got.ExpiresAt.Equal(want) {
		t.Fatalf("first refresh token expires %v, want the grant's end %v", got.ExpiresAt, want)
	}
}

// testGeneration checks that the marker is made once, read back the same (also after
// a reopen), and the same for every handle on the storage.
func testGeneration(t *testing.T, s store.Store, reopen func() store.Store) {
	g1, created, err := s.Generation(ctx)
	must(t, err)
	if g1 == "" || !created {
		t.Fatalf("first Generation = %q, created %v", g1, created)
	}
	g2, created, err := s.Generation(ctx)
	must(t, err)
	if g2 != g1 || created {
		t.Fatalf("second Generation = %q (created %v), want %q", g2, created, g1)
	}
	s = reopen()
	g3, created, err := s.Generation(ctx)
	must(t, err)
	if g3 != g1 || created {
		t.Fatalf("after reopen Generation = %q (created %v), want %q", g3, created, g1)
	}
}

// testRecordUsers checks that removal is noticed once, remembered, undone by putting
// the name back, and forgotten in the end.
func testRecordUsers(t *testing.T, s store.Store, _ func() store.Store) {
	now := in(0)
	record := func(at time.Time, names ...string) (string, string) {
		t.Helper()
		removed, newly, err := s.RecordUsers(ctx, names, at, time.Hour)
		must(t, err)
		slices.Sort(removed)
		slices.Sort(newly)
		return strings.Join(removed, ","), strings.Join(newly, ",")
	}
	check := func(gotR, gotN, wantR, wantN string) {
		t.Helper()
		if gotR != wantR || gotN != wantN {
			t.Fatalf("removed %q newly %q, want %q and %q", gotR, gotN, wantR, wantN)
		}
	}
	r, n := record(now, "alice", "bob", "carol")
	check(r, n, "", "")
	r, n = record(now.Add(time.Minute), "bob")
	check(r, n, "alice,carol", "alice,carol")
	r, n = record(now.Add(2*time.Minute), "bob")
	check(r, n, "alice,carol", "")
	r, n = record(now.Add(3*time.Minute), "bob", "carol") // carol is back
	check(r, n, "alice", "")
	r, n = record(now.Add(2*time.Hour), "bob", "carol") // alice forgotten
	check(r, n, "", "")
	r, n = record(now.Add(3*time.Hour), "bob")
	check(r, n, "carol", "carol")
}

// SeedRefreshToken stores t as the first refresh token of its grant the way
// a grant gets one: through an authorization code of the same grant,
// client, subject, scope and authentication time, redeemed at once. For
// tests and measurements that need refresh tokens without running a flow.
func SeedRefreshToken(ctx context.Context, s store.Store, t *store.RefreshToken) error {
	code := &store.AuthCode{Hash: "seed-" + t.Hash, ClientID: t.ClientID, Subject: t.Subject, Scope: t.Scope,
		GrantID: t.GrantID, AuthTime: t.AuthTime, ExpiresAt: time.Now().Add(time.Minute), OpenID: t.OpenID}
	if err := s.CreateCode(ctx, code); err != nil {
		return err
	}
	_, err := s.ConsumeCode(ctx, t.GrantID, code.Hash, t.ClientID, &store.Successor{Hash: t.Hash, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt, JKT: t.JKT})
	return err
}

// testRefreshKeyBinding checks that a grant's first refresh token is bound to the
// DPoP key its redemption proved; a rotation proving another key, or none,
// leaves the token as it is (even a used one: no reuse verdict), and the
// right key rotates it to a successor bound to the same key. An unbound
// token rotates whatever is proved.
func testRefreshKeyBinding(t *testing.T, s store.Store, _ func() store.Store) {
	c := newCode("kb", time.Minute)
	must(t, s.CreateCode(ctx, c))
	first := successor("k1")
	first.JKT = "key-a"
	_, err := s.ConsumeCode(ctx, c.GrantID, c.Hash, c.ClientID, &first)
	must(t, err)
	got, err := s.RefreshToken(ctx, c.GrantID, tok("k1", 1))
	must(t, err)
	if got.JKT != "key-a" {
		t.Fatalf("the first token's key: %+v", got)
	}
	for _, proved := range []string{"", "key-b"} {
		next := successor("stolen-" + proved)
		next.JKT = proved
		got, err = s.RotateRefreshToken(ctx, c.GrantID, tok("k1", 1), c.ClientID, next)
		wantErr(t, err, store.ErrKeyMismatch)
		if got == nil || got.JKT != "key-a" {
			t.Fatalf("a refused rotation returns the token: %+v", got)
		}
		wantRefresh(t, s, c.GrantID, tok("stolen-"+proved, 2), nil)
	}
	next := successor("k2")
	next.JKT = "key-a"
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("k1", 1), c.ClientID, next)
	must(t, err)
	got, err = s.RefreshToken(ctx, c.GrantID, tok("k2", 2))
	must(t, err)
	if got.JKT != "key-a" {
		t.Fatalf("the successor's key: %+v", got)
	}
	// The used token, presented without the key, is still no reuse.
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("k1", 1), c.ClientID, successor("again"))
	wantErr(t, err, store.ErrKeyMismatch)

	unbound := newRefresh("ub", "u1", time.Hour)
	must(t, SeedRefreshToken(ctx, s, unbound))
	proved := successor("u2")
	proved.JKT = "key-c"
	_, err = s.RotateRefreshToken(ctx, "ub", tok("u1", 1), unbound.ClientID, proved)
	must(t, err)
}

// testResourceCarried checks that a grant's RFC 8707 resource goes from its code or
// device authorization to its first refresh token and on to every
// successor.
func testResourceCarried(t *testing.T, s store.Store, _ func() store.Store) {
	c := newCode("rc", time.Minute)
	c.Resource = "https://mcp.example.com/mcp"
	must(t, s.CreateCode(ctx, c))
	got, err := s.ConsumeCode(ctx, c.GrantID, "rc", "app", ptr(successor("rc1")))
	must(t, err)
	if got.Resource != c.Resource {
		t.Fatalf("code's resource %q", got.Resource)
	}
	rt, err := s.RefreshToken(ctx, c.GrantID, tok("rc1", 1))
	must(t, err)
	if rt.Resource != c.Resource {
		t.Fatalf("first refresh token's resource %q", rt.Resource)
	}
	_, err = s.RotateRefreshToken(ctx, c.GrantID, tok("rc1", 1), "app", successor("rc2"))
	must(t, err)
	rt, err = s.RefreshToken(ctx, c.GrantID, tok("rc2", 2))
	must(t, err)
	if rt.Resource != c.Resource {
		t.Fatalf("successor's resource %q", rt.Resource)
	}
	d := &store.DeviceCode{UserCode: "RSRCRSRC", DeviceCodeHash: "dh", ClientID: "tv", Scope: "read", GrantID: "gres",
		Status: store.DeviceApproved, Subject: "mark", AuthTime: in(0), Interval: 5 * time.Second, ValidUntil: in(time.Minute),
		ExpiresAt: in(2 * time.Minute), Resource: c.Resource}
	must(t, s.CreateDeviceCode(ctx, d))
	first := successor("dres1")
	polled, outcome, err := s.PollDeviceCode(ctx, store.DevicePoll{GrantID: "gres", Hash: "dh", ClientID: "tv", Now: time.Now(), First: &first})
	must(t, err)
	if outcome != store.PollRedeemed || polled.Resource != c.Resource {
		t.Fatalf("poll %s, resource %q", outcome, polled.Resource)
	}
	rt, err = s.RefreshToken(ctx, "gres", tok("dres1", 1))
	must(t, err)
	if rt.Resource != c.Resource {
		t.Fatalf("the device grant's refresh token has resource %q", rt.Resource)
	}
}
