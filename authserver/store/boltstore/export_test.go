package boltstore

import (
	bolt "go.etcd.io/bbolt"

	"github.com/tokengate/tokengate/authserver/store"
)

// SeedLegacyRefresh writes t as the store's earlier version kept a refresh
// token: a record of its own under its grant and hash, used or not.
func (s *Store) SeedLegacyRefresh(t *store.RefreshToken, used bool) error {
	uses := uint64(0)
	if used {
		uses = 1
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketRefresh), grantKey(t.GrantID, t.Hash), t.ExpiresAt, uses, t)
	})
}
