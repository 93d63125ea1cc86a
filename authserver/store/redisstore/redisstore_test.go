package redisstore_test

import (
	"testing"

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
