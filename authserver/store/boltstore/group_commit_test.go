package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openGroup(t *testing.T) *groupCommit {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return &groupCommit{db: db}
}

// A lone write that fails runs once: its own transaction already gave its
// answer, and a refused refresh token or code is not checked twice.
func TestGroupCommitLoneFailureRunsOnce(t *testing.T) {
	g := openGroup(t)
	refused := errors.New("refused")
	var runs atomic.Int64
	err := g.update(func(tx *bolt.Tx) error {
		runs.Add(1)
		_ = tx.Bucket([]byte("b")).Put([]byte("k"), []byte("v"))
		return refused
	})
	if !errors.Is(err, refused) || runs.Load() != 1 {
		t.Fatalf("error %v after %d runs, want refused after 1", err, runs.Load())
	}
	if err := g.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("b")).Get([]byte("k")) != nil {
			return errors.New("a failed write's change was committed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Writes committed together keep their own errors: each failing one gets
// its own, its changes undone, and every other one is committed.
func TestGroupCommitKeepsEachWritesError(t *testing.T) {
	g := openGroup(t)
	var wg sync.WaitGroup
	errs := make([]error, 200)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = g.update(func(tx *bolt.Tx) error {
				if err := tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("v")); err != nil {
					return err
				}
				if i%3 == 0 {
					return fmt.Errorf("write %d refused", i)
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	if err := g.db.View(func(tx *bolt.Tx) error {
		for i, err := range errs {
			stored := tx.Bucket([]byte("b")).Get([]byte(fmt.Sprint(i))) != nil
			switch {
			case i%3 == 0 && (err == nil || err.Error() != fmt.Sprintf("write %d refused", i) || stored):
				return fmt.Errorf("write %d: error %v, stored %v; want its own error and nothing stored", i, err, stored)
			case i%3 != 0 && (err != nil || !stored):
				return fmt.Errorf("write %d: error %v, stored %v; want it committed", i, err, stored)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
