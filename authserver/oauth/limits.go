package oauth

// RFC 6749 §10.10 and RFC 8628 §5.1: limits on guessing, counted per
// address in counters every instance shares.

import (
	"context"
	"time"
)

// Counters are the shared counters limits count in (the store's
// CounterStore role).
type Counters interface {
	Incr(ctx context.Context, key string, window time.Duration) (count int64, resetAt time.Time, err error)
	Counter(ctx context.Context, key string) (count int64, resetAt time.Time, err error)
}

// Limits guard guessing (passwords on the sign-in page, user codes on the
// device page) and bound what one address may make (registrations):
// failures count in shared counters, and once any counter is over its
// limit nothing is even checked. Successes never count, so people are
// not locked out by using the service.
type Limits struct {
	Window   time.Duration
	Counters []Counted
}

// Counted is one counter of Limits and its limit.
type Counted struct {
	Key   string
	Limit int64
}

// Locked reports whether a counter is over its limit, and until when.
func (l Limits) Locked(ctx context.Context, c Counters) (time.Time, bool, error) {
	for _, k := range l.Counters {
		n, until, err := c.Counter(ctx, k.Key)
		if err != nil {
			return time.Time{}, false, err
		}
		if n >= k.Limit {
			return until, true, nil
		}
	}
	return time.Time{}, false, nil
}

// Fail counts one failure on every counter.
func (l Limits) Fail(ctx context.Context, c Counters) error {
	var first error
	for _, k := range l.Counters {
		if _, _, err := c.Incr(ctx, k.Key, l.Window); err != nil && first == nil {
			first = err
		}
	}
	return first
}
