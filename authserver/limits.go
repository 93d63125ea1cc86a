package authserver

// RFC 6749 §10.10 and RFC 8628 §5.1: limits on guessing, counted per address.

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// failureLimits guard guessing on the person-facing pages (passwords on
// /login, user codes on /device): failures count in store counters, shared
// by every instance, and once any counter is over its limit nothing is
// even checked. Successes never count, so people are not locked out by
// using the service.
type failureLimits struct {
	window   time.Duration
	counters []limitedCounter
}

type limitedCounter struct {
	key   string
	limit int64
}

// locked reports whether a counter is over its limit, and until when.
func (l failureLimits) locked(ctx context.Context, c store.CounterStore) (time.Time, bool, error) {
	for _, k := range l.counters {
		n, until, err := c.Counter(ctx, k.key)
		if err != nil {
			return time.Time{}, false, err
		}
		if n >= k.limit {
			return until, true, nil
		}
	}
	return time.Time{}, false, nil
}

// fail counts one failure on every counter.
func (l failureLimits) fail(ctx context.Context, c store.CounterStore) error {
	var first error
	for _, k := range l.counters {
		if _, _, err := c.Incr(ctx, k.key, l.window); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// failed counts one failure. A store error is logged, not returned: the
// person gets the answer to their mistake either way.
func (s *Server) failed(ctx context.Context, l failureLimits) {
	if err := l.fail(ctx, s.store); err != nil {
		s.storeError("counting a failure", err)
	}
}

// addressKey is the requester's address as limits count it (see
// oauth.AddressKey).
func (s *Server) addressKey(r *http.Request) string { return oauth.AddressKey(s.clientIP(r)) }

func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.ClientIP != nil {
		if ip := s.cfg.ClientIP(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
