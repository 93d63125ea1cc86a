package console

// Counters by minute over the last hour, kept in process for the charts.

import (
	"sync"
	"sync/atomic"
	"time"
)

// Minutes is how far back the charts go.
const Minutes = 60

// Series counts events per minute over the last Minutes minutes, without
// locks: each slot packs its minute (high 32 bits) and its count (low 32),
// so that counting into a slot left from an hour ago starts it afresh in
// the same compare-and-swap.
type Series struct {
	slots [Minutes]atomic.Uint64
}

// Add counts one event now.
func (s *Series) Add() { s.add(time.Now()) }

func (s *Series) add(now time.Time) {
	minute := uint64(now.Unix() / 60)
	slot := &s.slots[minute%Minutes]
	for {
		old := slot.Load()
		next := minute<<32 | 1
		if old>>32 == minute {
			next = old + 1
		}
		if slot.CompareAndSwap(old, next) {
			return
		}
	}
}

// Last returns the counts of the last Minutes minutes up to now, oldest
// first.
func (s *Series) Last(now time.Time) [Minutes]uint64 {
	var out [Minutes]uint64
	current := uint64(now.Unix() / 60)
	for i := range Minutes {
		minute := current - uint64(Minutes-1-i)
		if v := s.slots[minute%Minutes].Load(); v>>32 == minute {
			out[i] = v & (1<<32 - 1)
		}
	}
	return out
}

// History is what the console charts: the process's own counts, kept
// across config reloads by whoever holds it (tokengate: one per process).
type History struct {
	TokensIssued Series
	TokenErrors  Series
	// BearerOK and BearerRefused are bearer_auth's outcomes: let
	// through, and refused for any reason (missing, invalid, expired,
	// revoked, insufficient scope, unavailable).
	BearerOK, BearerRefused Series

	rates clientRates
}

// RateAllowed counts a request of clientID that a rate_limit let through.
func (h *History) RateAllowed(clientID string) { h.rates.of(clientID).allowed.Add() }

// RateLimited counts one that a rate_limit refused.
func (h *History) RateLimited(clientID string) { h.rates.of(clientID).refused.Add() }

// ClientRate is a client's traffic at rate-limited routes.
type ClientRate struct {
	// PerMinute is its requests a minute over the last five minutes.
	PerMinute uint64
	// RefusedLastHour is how many of them were refused in the last hour.
	RefusedLastHour uint64
}

// Rate is clientID's traffic at rate-limited routes, as of now.
func (h *History) Rate(clientID string, now time.Time) ClientRate {
	c := h.rates.lookup(clientID)
	if c == nil {
		return ClientRate{}
	}
	allowed, refused := c.allowed.Last(now), c.refused.Last(now)
	var r ClientRate
	for i := range Minutes {
		r.RefusedLastHour += refused[i]
		if i >= Minutes-5 {
			r.PerMinute += allowed[i] + refused[i]
		}
	}
	r.PerMinute /= 5
	return r
}

// clientRates are the clients' series, at most maxRateClients of them:
// past it, new clients count together under otherClients (a flood of
// self-registered clients cannot grow the map).
type clientRates struct {
	mu sync.RWMutex
	m  map[string]*clientRate
}

type clientRate struct{ allowed, refused Series }

const (
	maxRateClients = 10_000
	otherClients   = "\x00others"
)

func (cr *clientRates) lookup(id string) *clientRate {
	cr.mu.RLock()
	defer cr.mu.RUnlock()
	return cr.m[id]
}

func (cr *clientRates) of(id string) *clientRate {
	if c := cr.lookup(id); c != nil {
		return c
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.m == nil {
		cr.m = map[string]*clientRate{}
	}
	if c := cr.m[id]; c != nil {
		return c
	}
	if len(cr.m) >= maxRateClients {
		id = otherClients
		if c := cr.m[id]; c != nil {
			return c
		}
	}
	c := new(clientRate)
	cr.m[id] = c
	return c
}
