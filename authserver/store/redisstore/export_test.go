package redisstore

import (
	"context"
	"encoding/json"

	"github.com/redis/go-redis/v9"
	"github.com/tokengate/tokengate/authserver/store"
)

// AddHook lets tests watch what the store sends to Redis.
func (s *Store) AddHook(h redis.Hook) { s.rdb.AddHook(h) }

// LoadGrantScriptOnly flushes the server's scripts and loads the one that
// writes a grant's record alone, as a server that saw some of the store's
// scripts would be.
func (s *Store) LoadGrantScriptOnly(ctx context.Context) error {
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		return err
	}
	return putGrantScript.Load(ctx, s.rdb).Err()
}

// SeedLegacyRefresh writes t as the store's earlier version kept a refresh
// token: a string of its own under its grant and hash, a state byte and
// compact JSON (a used one naming a successor and when it was made).
func (s *Store) SeedLegacyRefresh(t *store.RefreshToken, used bool) error {
	c := compactRefresh{ClientID: t.ClientID, Subject: t.Subject, Scope: t.Scope, AuthTime: unixMilli(t.AuthTime),
		IssuedAt: unixMilli(t.IssuedAt), ExpiresAt: unixMilli(t.ExpiresAt), Resource: t.Resource, JKT: t.JKT}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	state := "0"
	if used {
		state = "1"
		data = append(data[:len(data)-1], `,"x":"successor","u":1}`...)
	}
	return s.rdb.Set(context.Background(), s.refreshKey(t.GrantID, t.Hash), state+string(data), store.TTL(t.ExpiresAt)).Err()
}
