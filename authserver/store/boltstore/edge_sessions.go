package boltstore

// session_auth's sessions (store.EdgeSessionStore).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokengate/tokengate/authserver/store"
)

// edgeIndexKey is an index entry's key: kind ("s" for subject, "d" for
// the provider's sid), site, owner, then the session's ID.
func edgeIndexKey(kind, site, owner, id string) []byte {
	return []byte(kind + "\x00" + site + "\x00" + owner + "\x00" + id)
}

// CreateEdgeSession implements store.EdgeSessionStore.
func (s *Store) CreateEdgeSession(ctx context.Context, es *store.EdgeSession, max int) (ended []string, err error) {
	err = s.updateTx(ctx, func(tx *bolt.Tx) error {
		ended = nil
		if err := put(tx.Bucket(bucketEdgeSessions), []byte(es.ID), es.ExpiresAt, 0, es); err != nil {
			return err
		}
		idx := tx.Bucket(bucketEdgeIndex)
		if err := put(idx, edgeIndexKey("s", es.Site, es.Subject, es.ID), es.EndsBy, uint64(es.CreatedAt.UnixNano()), nil); err != nil {
			return err
		}
		if es.SID != "" {
			if err := put(idx, edgeIndexKey("d", es.Site, es.SID, es.ID), es.EndsBy, 0, nil); err != nil {
				return err
			}
		}
		// Past the bound, the subject's oldest sessions end.
		entries := edgeEntries(idx, "s", es.Site, es.Subject)
		if max <= 0 || len(entries) <= max {
			return nil
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].created < entries[j].created })
		for _, e := range entries[:len(entries)-max] {
			if err := deleteEdgeSession(tx, e.id); err != nil && err != store.ErrNotFound {
				return err
			}
			_ = idx.Delete(edgeIndexKey("s", es.Site, es.Subject, e.id))
			ended = append(ended, e.id)
		}
		return nil
	})
	return ended, err
}

// edgeEntry is a live index entry: its session's ID, and (subject
// entries) when the session was made.
type edgeEntry struct {
	id      string
	created uint64
}

// edgeEntries lists the live index entries of kind for site and owner.
func edgeEntries(idx *bolt.Bucket, kind, site, owner string) []edgeEntry {
	var out []edgeEntry
	prefix := edgeIndexKey(kind, site, owner, "")
	now := time.Now()
	c := idx.Cursor()
	for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
		if len(raw) >= headerLen && !expired(raw, now) {
			out = append(out, edgeEntry{string(k[len(prefix):]), binary.BigEndian.Uint64(raw[8:16])})
		}
	}
	return out
}

// EdgeSession implements store.EdgeSessionStore.
func (s *Store) EdgeSession(ctx context.Context, id string) (*store.EdgeSession, error) {
	es := new(store.EdgeSession)
	if err := s.getJSON(ctx, bucketEdgeSessions, id, es); err != nil {
		return nil, err
	}
	return es, nil
}

// UpdateEdgeSession implements store.EdgeSessionStore.
func (s *Store) UpdateEdgeSession(ctx context.Context, es *store.EdgeSession, prev int64) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEdgeSessions)
		r, err := get(b, []byte(es.ID))
		if err != nil {
			return err
		}
		var cur store.EdgeSession
		if err := json.Unmarshal(r.data, &cur); err != nil {
			return err
		}
		if cur.Version != prev {
			return store.ErrConflict
		}
		next := *es
		next.Version = prev + 1
		return put(b, []byte(es.ID), next.ExpiresAt, 0, &next)
	})
}

// DeleteEdgeSession implements store.EdgeSessionStore.
func (s *Store) DeleteEdgeSession(ctx context.Context, id string) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error { return deleteEdgeSession(tx, id) })
}

// deleteEdgeSession deletes a session and its index entries in tx.
func deleteEdgeSession(tx *bolt.Tx, id string) error {
	b := tx.Bucket(bucketEdgeSessions)
	r, err := get(b, []byte(id))
	if err != nil {
		return err
	}
	var es store.EdgeSession
	if err := json.Unmarshal(r.data, &es); err != nil {
		return err
	}
	idx := tx.Bucket(bucketEdgeIndex)
	_ = idx.Delete(edgeIndexKey("s", es.Site, es.Subject, id))
	if es.SID != "" {
		_ = idx.Delete(edgeIndexKey("d", es.Site, es.SID, id))
	}
	return b.Delete([]byte(id))
}

// EdgeSessions implements store.EdgeSessionStore.
func (s *Store) EdgeSessions(ctx context.Context, site, sub, sid string) ([]*store.EdgeSession, error) {
	kind, owner := "s", sub
	if sub == "" {
		kind, owner = "d", sid
	}
	var out []*store.EdgeSession
	if owner == "" {
		return nil, nil
	}
	err := s.view(ctx, bucketEdgeIndex, func(idx *bolt.Bucket) error {
		sessions := idx.Tx().Bucket(bucketEdgeSessions)
		for _, e := range edgeEntries(idx, kind, site, owner) {
			r, err := get(sessions, []byte(e.id))
			if err != nil {
				continue // ended: the sweep drops its entries in time
			}
			es := new(store.EdgeSession)
			if err := json.Unmarshal(r.data, es); err != nil {
				return err
			}
			out = append(out, es)
		}
		return nil
	})
	return out, err
}
