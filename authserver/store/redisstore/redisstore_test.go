package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// Refresh tokens written by the version before generations keep working.
func TestLegacyRefreshTokens(t *testing.T) {
	s, err := redisstore.New(redisstore.Options{Addresses: []string{redistest.Start(t).URL}, Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.RunLegacy(t, s, s.SeedLegacyRefresh)
}

// The same contract on a three-master Redis Cluster: keys a script
// touches together share a hash tag.
func TestContractCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		opts := redisstore.Options{Addresses: c.Addrs, Prefix: redistest.Prefix(t)}
		return func() (store.Store, error) { return redisstore.New(opts) }
	})
}

// And through Sentinel (one master, one replica).
// Every write waits for the replica (WAIT in the same pipeline).
func TestContractSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		opts := redisstore.Options{Addresses: s.Addrs, MasterName: s.MasterName, Prefix: redistest.Prefix(t), WaitReplicas: 1}
		return func() (store.Store, error) { return redisstore.New(opts) }
	})
}

// A write no replica confirms is an error, on a single server and on a
// Cluster master alike (neither has replicas here), and nothing is
// answered as done.
func TestUnreplicatedWritesFail(t *testing.T) {
	for name, addrs := range map[string][]string{
		"standalone": {redistest.Start(t).URL},
		"cluster":    redistest.StartCluster(t).Addrs,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := redisstore.New(redisstore.Options{Addresses: addrs, Prefix: redistest.Prefix(t), WaitReplicas: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			err = s.CreateCode(context.Background(), &store.AuthCode{Hash: "h", GrantID: "g", ClientID: "app", ExpiresAt: now.Add(time.Minute)})
			if err == nil || !strings.Contains(err.Error(), "0 of 1 replicas confirmed") {
				t.Fatalf("CreateCode without a replica: %v", err)
			}
			_, err = s.RotateRefreshToken(context.Background(), "g", store.Presented{Hash: "h", Gen: 1}, "app", store.Successor{Hash: "n", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a read-only miss needs no replica: %v", err)
			}
		})
	}
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

// roundTrips counts the commands and pipelines sent to Redis.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// Token requests that write state cost one round trip: redeeming a code
// together with storing the first refresh token and noting the grant's
// use, a rotation, a device poll; and so does issuing a code.
func TestTokenRequestsAreOneRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	rt := new(roundTrips)
	s.AddHook(rt)
	now := time.Now()
	next := func(hash string) store.Successor {
		return store.Successor{Hash: hash, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	count := func(what string, want int64, op func() error) {
		t.Helper()
		before := rt.n.Load()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := rt.n.Load() - before; want > 0 && got != want {
			t.Errorf("%s took %d round trips, want %d", what, got, want)
		}
	}
	// One exchange, refresh and poll of grant, in the order a client makes them.
	flow := func(grant string, counted bool) {
		t.Helper()
		trips := func(n int64) int64 {
			if !counted {
				return 0 // the first run also loads the scripts
			}
			return n
		}
		// The authorization endpoint's code and its grant (record and
		// index entries) in one round trip too.
		count("code with its grant", trips(1), func() error {
			return s.CreateCode(ctx, &store.AuthCode{Hash: "c", GrantID: grant, ClientID: "app", Subject: "mark", ExpiresAt: now.Add(time.Minute),
				Grant: &store.Grant{ID: grant, ClientID: "app", Subject: "mark", CreatedAt: now, ExpiresAt: now.Add(time.Hour), EndsBy: now.Add(24 * time.Hour)}})
		})
		if err := s.CreateDeviceCode(ctx, &store.DeviceCode{UserCode: grant, GrantID: grant, DeviceCodeHash: "d", ClientID: "tv",
			Status: store.DevicePending, Interval: 5 * time.Second, ValidUntil: now.Add(time.Minute), ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		first := next("r1")
		count("code exchange", trips(1), func() error { _, err := s.ConsumeCode(ctx, grant, "c", "app", &first); return err })
		count("refresh", trips(1), func() error {
			_, err := s.RotateRefreshToken(ctx, grant, store.Presented{Hash: "r1", Gen: store.FirstGen}, "app", next("r2"))
			return err
		})
		count("device poll", trips(1), func() error {
			_, _, err := s.PollDeviceCode(ctx, store.DevicePoll{GrantID: grant, Hash: "d", ClientID: "tv", Now: now, First: &first})
			return err
		})
		if _, err := s.UpdateDeviceCode(ctx, grant, func(d *store.DeviceCode) error { d.Status, d.Subject = store.DeviceApproved, "mark"; return nil }); err != nil {
			t.Fatal(err)
		}
		devFirst := next("d1")
		count("device poll that redeems", trips(1), func() error {
			_, outcome, err := s.PollDeviceCode(ctx, store.DevicePoll{GrantID: grant, Hash: "d", ClientID: "tv", Now: now.Add(5 * time.Second), First: &devFirst})
			if err == nil && outcome != store.PollRedeemed {
				err = fmt.Errorf("outcome %s", outcome)
			}
			return err
		})
	}
	flow("warm", false)
	flow("g", true)
}

// A server that knows some of a pipeline's scripts (a restart, a
// failover to a replica that saw others) runs each of them once: a code
// created with its grant is created, not refused as existing.
func TestPipelinedScriptsRunOnce(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if err := s.LoadGrantScriptOnly(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g := &store.Grant{ID: "g1", ClientID: "app", Subject: "mark", CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), EndsBy: now.Add(24 * time.Hour)}
	if err := s.CreateCode(ctx, &store.AuthCode{Hash: "c", GrantID: "g1", ClientID: "app", Subject: "mark", ExpiresAt: now.Add(time.Minute), Grant: g}); err != nil {
		t.Fatalf("creating a code on a server that knew one of the scripts: %v", err)
	}
	got, err := s.Grants(ctx, store.GrantQuery{Subject: "mark"})
	if err != nil || len(got) != 1 || got[0].ID != "g1" {
		t.Fatalf("grants %+v, %v", got, err)
	}
}

// openStore is a store on a redis-server of the test's own.
func openStore(t *testing.T) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{Addresses: []string{redistest.Start(t).URL}, Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
