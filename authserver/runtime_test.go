package authserver_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
)

// flakyStore is out of reach while down is set: the key ring cannot be read.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func (f *flakyStore) Keys(ctx context.Context) (*store.KeyRing, error) {
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Store.Keys(ctx)
}

// runEnv starts Run on an env of a shared store with short intervals.
func runEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	e := newEnvWith(t, st, "ES256", func(c *authserver.Config) {
		c.SharedStore, c.RevocationMaxStaleness, c.SyncInterval = true, 300*time.Millisecond, 50*time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Out of reach of a shared store longer than RevocationMaxStaleness, the
// revocation state is stale and tokens fail closed; back in reach, they
// pass again.
func TestRunStaleness(t *testing.T) {
	st := &flakyStore{Store: openStore(t)}
	e := runEnv(t, st)
	tok := issue(t, e)
	if _, err := e.validator.Validate(tok, ""); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	eventually(t, "stale once the store is out of reach", e.srv.Revocations().Stale)
	_, err := e.validator.Validate(tok, "")
	var te *introspect.TokenError
	if !errors.As(err, &te) || te.Reason != introspect.ReasonStale {
		t.Fatalf("a token while stale: %v, want %s", err, introspect.ReasonStale)
	}
	if h := e.srv.Health(t.Context()); h.Status == "ok" {
		t.Fatalf("health while stale: %+v", h)
	}
	st.down.Store(false)
	eventually(t, "in sync again", func() bool { return !e.srv.Revocations().Stale() })
	if _, err := e.validator.Validate(tok, ""); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
}

// When the feed starts, Run resyncs from the store: revocations made while
// it was not listening arrive, and nothing held in memory is dropped.
func TestRunResync(t *testing.T) {
	st := openStore(t)
	e := newEnvWith(t, st, "ES256")
	missed, held := issue(t, e), issue(t, e)
	claims := func(tok string) *introspect.Claims {
		c, err := e.validator.Validate(tok, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	until := time.Now().Add(time.Hour)
	// Made in the store only (another instance, while this one was not
	// listening), and in memory only (the store lost it).
	if err := st.Revoke(t.Context(), store.Revocation{Kind: store.RevokeToken, Value: claims(missed).ID, At: time.Now(), ExpiresAt: until}); err != nil {
		t.Fatal(err)
	}
	e.srv.Revocations().Apply(store.Revocation{Kind: store.RevokeToken, Value: claims(held).ID, At: time.Now(), ExpiresAt: until})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the missed revocation arrives", func() bool {
		_, err := e.validator.Validate(missed, "")
		return err != nil
	})
	if _, err := e.validator.Validate(held, ""); err == nil {
		t.Fatal("the resync dropped a revocation held in memory")
	}
}
