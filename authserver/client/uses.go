package client

// When self-registered clients were last used: unused registrations
// expire (registration's client_ttl and unused_client_ttl).

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/store"
)

// useRecordEvery is how often a client's use is written down: well within
// any sensible client_ttl.
const useRecordEvery = 24 * time.Hour

// Uses records that self-registered clients were issued tokens: a
// registration's first use always (one never used expires early), and
// later ones when client_ttl counts them, at most once per interval per
// client and instance, off the request path, so that a busy client costs
// one store write a day. A nil *Uses records nothing (registration off).
type Uses struct {
	clients   store.ClientStore
	clientTTL time.Duration
	log       *zap.Logger

	mu   sync.Mutex
	last map[string]time.Time
}

// NewUses records uses in clients; clientTTL is registration's client_ttl
// (0: kept however long unused).
func NewUses(clients store.ClientStore, clientTTL time.Duration, log *zap.Logger) *Uses {
	return &Uses{clients: clients, clientTTL: clientTTL, log: log, last: map[string]time.Time{}}
}

// Note records that c was issued a token.
func (u *Uses) Note(c *Client) {
	if u == nil || c.Source != SourceDynamic || u.clientTTL <= 0 && !c.LastUsedAt.IsZero() {
		return
	}
	now := time.Now().UTC()
	every := useRecordEvery
	if u.clientTTL > 0 {
		every = min(every, u.clientTTL/10)
	}
	u.mu.Lock()
	if now.Sub(u.last[c.ID]) < every || now.Sub(c.LastUsedAt) < every {
		u.mu.Unlock()
		return
	}
	u.last[c.ID] = now
	u.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Only the time is written: a secret rotated or a registration
		// updated meanwhile stays, and a client deleted stays deleted.
		touch := func(c *Client) error {
			if now.After(c.LastUsedAt) {
				c.LastUsedAt = now
			}
			return nil
		}
		if err := u.clients.UpdateClient(ctx, c.ID, touch); err != nil && !errors.Is(err, store.ErrNotFound) {
			u.log.Warn("recording a registered client's use", zap.String("client_id", c.ID), zap.Error(err))
		}
	}()
}

// Forget drops what is remembered of a deleted client.
func (u *Uses) Forget(id string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	delete(u.last, id)
	u.mu.Unlock()
}
