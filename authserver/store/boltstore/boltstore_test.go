package boltstore_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/authserver/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "tokengate.db")
		return func() (store.Store, error) { return boltstore.Open(path) }
	})
}

// Refresh tokens written by the version before generations keep working.
func TestLegacyRefreshTokens(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "tokengate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.RunLegacy(t, s, s.SeedLegacyRefresh)
}

// A second process (or a config that forgot to close) gets a clear error,
// not a hang.
func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokengate.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := boltstore.Open(path); err == nil {
		t.Fatal("opening a locked file succeeded")
	}
}

// A file of an earlier version loses its consents bucket at open: consents
// are the grants now, and the old records would lie in the file for good.
func TestOpenDropsTheConsentsBucket(t *testing.T) {
	path := earlierFile(t, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("consents"))
		if err != nil {
			return err
		}
		return b.Put([]byte("mark\x00app"), []byte("{}"))
	})
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("consents")) != nil {
			t.Error("the consents bucket is still in the file")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A file of an earlier version, whose clients were counted by walking
// them, gets its count at open; the count then follows registrations and
// deletions.
func TestOpenCountsAnEarlierFilesClients(t *testing.T) {
	path := earlierFile(t, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("clients"))
		if err != nil {
			return err
		}
		for _, id := range []string{"a", "b", "c"} {
			raw, _ := json.Marshal(store.Client{ID: id, Name: id})
			if err := b.Put([]byte(id), append(make([]byte, 16), raw...)); err != nil {
				return err
			}
		}
		return nil
	})
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if n, err := s.CountClients(ctx); err != nil || n != 3 {
		t.Fatalf("an earlier file's clients counted %d (%v), want 3", n, err)
	}
	if list, err := s.Clients(ctx); err != nil || len(list) != 3 {
		t.Fatalf("its clients: %d (%v)", len(list), err)
	}
	if err := s.PutClient(ctx, &store.Client{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountClients(ctx); n != 3 {
		t.Fatalf("after one registration and one deletion: %d, want 3", n)
	}
}

// earlierFile is a bbolt file as an earlier version left it: what fill
// writes, and nothing of this version's.
func earlierFile(t *testing.T, fill func(tx *bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokengate.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fill); err != nil {
		t.Fatal(err)
	}
	return path
}
