package boltstore

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokengate/tokengate/authserver/store"
)

// Expired records are deleted from the file, not only hidden from reads.
func TestSweepDeletesExpired(t *testing.T) {
	s, err := OpenWith(filepath.Join(t.TempDir(), "tg.db"), Options{SweepEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateCode(ctx, &store.AuthCode{Hash: "short", ExpiresAt: time.Now().Add(20 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCode(ctx, &store.AuthCode{Hash: "long", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutClient(ctx, &store.Client{ID: "forever"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	count := func(bucket []byte) (n int) {
		_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil })
		return n
	}
	if n := count(bucketCodes); n != 1 {
		t.Fatalf("%d codes in the file after the sweep, want 1", n)
	}
	if n := count(bucketClients); n != 1 {
		t.Fatalf("records without expiry were swept: %d clients", n)
	}
}
