package oauth

// Who sent a request, the audit lines that record it, and its address as
// limits count it.

import (
	"context"
	"net/netip"

	"go.uber.org/zap"
)

// Audit writes one audit line: an event and its fields, never a secret;
// the requester's address is added when ctx carries it (WithRequester).
// The server gives one to each component that writes audit lines.
type Audit func(ctx context.Context, event string, fields ...zap.Field)

type requesterKey struct{}

// requesterCtx carries the requester's address in one allocation, where
// context.WithValue would box the string in a second: every request
// makes one.
type requesterCtx struct {
	context.Context
	ip string
}

// Value answers requesterKey with the requesterCtx itself (a pointer,
// which boxes without allocating).
func (c *requesterCtx) Value(key any) any {
	if key == (requesterKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithRequester is ctx carrying the address of the request it serves,
// for the audit lines and limits of work done deeper down.
func WithRequester(ctx context.Context, ip string) context.Context {
	return &requesterCtx{ctx, ip}
}

// Requester is the address WithRequester put in ctx.
func Requester(ctx context.Context) (string, bool) {
	if c, ok := ctx.Value(requesterKey{}).(*requesterCtx); ok {
		return c.ip, true
	}
	return "", false
}

// AddressKey is an address as limits count it: an IPv4 address, or an
// IPv6 address's /64, which is what one subscriber or host is usually
// given (counting single IPv6 addresses would let anyone with a /64 make
// 2^64 fresh ones).
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is4() {
		return ip // netip takes IPv4 only in its one dotted form: already the key
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
