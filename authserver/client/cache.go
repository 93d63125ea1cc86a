package client

// A small cache for what the server fetches from clients' URLs (metadata
// documents, key sets): entries live until a time of their own, and the
// cache stays bounded however many URLs clients name.

import (
	"sync"
	"time"
)

type expiringCache[V any] struct {
	max int

	mu      sync.Mutex
	entries map[string]expiring[V]
}

type expiring[V any] struct {
	value V
	until time.Time
}

// get returns the live value under key.
func (c *expiringCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !time.Now().Before(e.until) {
		var zero V
		return zero, false
	}
	return e.value, true
}

// put keeps value under key until then, dropping expired entries (and, if
// still full, others) to stay within max.
func (c *expiringCache[V]) put(key string, value V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]expiring[V]{}
	}
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if !now.Before(e.until) || len(c.entries) >= c.max {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = expiring[V]{value, until}
}
