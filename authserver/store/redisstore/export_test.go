package redisstore

import "github.com/redis/go-redis/v9"

// AddHook lets tests watch what the store sends to Redis.
func (s *Store) AddHook(h redis.Hook) { s.rdb.AddHook(h) }
