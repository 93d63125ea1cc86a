package oauth

// RFC 6749 §10.10 and RFC 8628 §5.1: limits on guessing, counted per
// address in counters every instance shares.

import (
	"context"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

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
func (l Limits) Locked(ctx context.Context, c store.CounterStore) (time.Time, bool, error) {
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

// Fail counts one failure on every counter. A store error is reported
// through f (logged, counted), not returned: the person gets the answer
// to their mistake either way.
func (l Limits) Fail(ctx context.Context, c store.CounterStore, f Failures) {
	var first error
	for _, k := range l.Counters {
		if _, _, err := c.Incr(ctx, k.Key, l.Window); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		f.Store("counting a failure", first)
	}
}
