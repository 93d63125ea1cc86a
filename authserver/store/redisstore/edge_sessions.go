package redisstore

// session_auth's sessions (store.EdgeSessionStore): each a string, "es:"
// and the hash of its ID, living until the session's idle end; the
// indexes of a site's subjects and provider sessions are sorted sets by
// the sessions' absolute end (indexGrantScript's), so the bound drops the
// oldest first and an index expires with its last entry.

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/tokengate/tokengate/authserver/store"
)

func (s *Store) edgeSessionKey(id string) string { return s.key("es", id) }

func (s *Store) edgeIndexKey(kind, site, owner string) string { return s.key("esi", kind, site, owner) }

// CreateEdgeSession implements store.EdgeSessionStore: the session and its
// index entries in one round trip (without replicas to wait for); the
// sessions the bound drops are deleted in a second.
func (s *Store) CreateEdgeSession(ctx context.Context, es *store.EdgeSession, max int) ([]string, error) {
	data, err := json.Marshal(es)
	if err != nil {
		return nil, err
	}
	key := s.edgeSessionKey(es.ID)
	if err := s.write(ctx, key, func(p redis.Pipeliner) { p.Set(ctx, key, data, store.TTL(es.ExpiresAt)) }); err != nil {
		return nil, err
	}
	now, ends := unixMilli(es.CreatedAt), unixMilli(es.EndsBy)
	calls := []scriptCall{{indexGrantScript, []string{s.edgeIndexKey("s", es.Site, es.Subject)}, []any{es.ID, ends, now, max}}}
	if es.SID != "" {
		calls = append(calls, scriptCall{indexGrantScript, []string{s.edgeIndexKey("d", es.Site, es.SID)}, []any{es.ID, ends, now, 0}})
	}
	cmds, err := s.runScripts(ctx, calls...)
	if err != nil {
		return nil, err
	}
	ended, _ := cmds[0].StringSlice()
	for _, id := range ended {
		if err := s.DeleteEdgeSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return ended, err
		}
	}
	return ended, nil
}

// EdgeSession implements store.EdgeSessionStore.
func (s *Store) EdgeSession(ctx context.Context, id string) (*store.EdgeSession, error) {
	v, err := s.rdb.Get(ctx, s.edgeSessionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	es := new(store.EdgeSession)
	return es, json.Unmarshal(v, es)
}

// updateEdgeScript replaces the session KEYS[1] with ARGV[2] (PX ARGV[3])
// if its version is ARGV[1]: 1 done, 0 another version, nothing when gone.
var updateEdgeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
if tostring(cjson.decode(v).version) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// UpdateEdgeSession implements store.EdgeSessionStore.
func (s *Store) UpdateEdgeSession(ctx context.Context, es *store.EdgeSession, prev int64) error {
	next := *es
	next.Version = prev + 1
	data, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	cmds, err := s.runScripts(ctx, scriptCall{updateEdgeScript, []string{s.edgeSessionKey(es.ID)}, []any{prev, data, store.TTL(es.ExpiresAt).Milliseconds()}})
	if err != nil {
		return err
	}
	n, err := cmds[0].Int()
	switch {
	case errors.Is(err, redis.Nil):
		return store.ErrNotFound
	case err != nil:
		return err
	case n == 0:
		return store.ErrConflict
	}
	return nil
}

// DeleteEdgeSession implements store.EdgeSessionStore.
func (s *Store) DeleteEdgeSession(ctx context.Context, id string) error {
	es, err := s.EdgeSession(ctx, id)
	if err != nil {
		return err
	}
	key := s.edgeSessionKey(id)
	return s.write(ctx, key, func(p redis.Pipeliner) {
		p.Del(ctx, key)
		p.ZRem(ctx, s.edgeIndexKey("s", es.Site, es.Subject), id)
		if es.SID != "" {
			p.ZRem(ctx, s.edgeIndexKey("d", es.Site, es.SID), id)
		}
	})
}

// EdgeSessions implements store.EdgeSessionStore.
func (s *Store) EdgeSessions(ctx context.Context, site, sub, sid string) ([]*store.EdgeSession, error) {
	kind, owner := "s", sub
	if sub == "" {
		kind, owner = "d", sid
	}
	if owner == "" {
		return nil, nil
	}
	ids, err := s.rdb.ZRange(ctx, s.edgeIndexKey(kind, site, owner), 0, -1).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	// One GET each, pipelined: in a Cluster the sessions are in slots of
	// their own.
	gets := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			gets[i] = p.Get(ctx, s.edgeSessionKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []*store.EdgeSession
	for _, g := range gets {
		v, err := g.Bytes()
		if err != nil {
			continue // ended: its index entry goes with its end
		}
		es := new(store.EdgeSession)
		if err := json.Unmarshal(v, es); err != nil {
			return nil, err
		}
		out = append(out, es)
	}
	return out, nil
}
