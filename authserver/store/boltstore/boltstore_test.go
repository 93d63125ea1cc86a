package boltstore_test

import (
	"path/filepath"
	"testing"

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
