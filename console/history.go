package console

// Counters by minute over the last hour, kept in process for the charts.

import (
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
}
