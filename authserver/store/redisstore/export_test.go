package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
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
