package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/redisstore"
	"github.com/tokengate/tokengate/authserver/store/storetest"
	"github.com/tokengate/tokengate/internal/redistest"
)

func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		opts := redisstore.Options{Addresses: []string{srv.URL}, Prefix: redistest.Prefix(t)}
		return func() (store.Store, error) { return redisstore.New(opts) }
	})
}

// A revocation made through one connection (instance) reaches the others;
// after Redis comes back from an outage, watchers resync.
func TestRevocationsReachOtherInstances(t *testing.T) {
	srv := redistest.Start(t)
	opts := redisstore.Options{Addresses: []string{srv.URL}, Prefix: redistest.Prefix(t)}
	a, _ := redisstore.New(opts)
	b, _ := redisstore.New(opts)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan store.Revocation, 10)
	resyncs := make(chan struct{}, 10)
	go a.WatchRevocations(ctx, func(r store.Revocation) { got <- r }, func() { resyncs <- struct{}{} })
	wait := func(what string, ch any) {
		t.Helper()
		var ok bool
		switch c := ch.(type) {
		case chan store.Revocation:
			select {
			case <-c:
				ok = true
			case <-time.After(10 * time.Second):
			}
		case chan struct{}:
			select {
			case <-c:
				ok = true
			case <-time.After(10 * time.Second):
			}
		}
		if !ok {
			t.Fatalf("no %s", what)
		}
	}
	wait("first resync", resyncs)
	if err := b.Revoke(ctx, store.Revocation{Kind: store.RevokeSubject, Value: "mark", At: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wait("revocation from the other instance", got)

	srv.Restart()
	wait("resync after the outage", resyncs)
	if err := b.Revoke(ctx, store.Revocation{Kind: store.RevokeToken, Value: "j", At: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wait("revocation after the outage", got)
}
