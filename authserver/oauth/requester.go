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

// WithRequester is ctx carrying the address of the request it serves,
// for the audit lines and limits of work done deeper down.
func WithRequester(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, requesterKey{}, ip)
}

// Requester is the address WithRequester put in ctx.
func Requester(ctx context.Context) (string, bool) {
	ip, ok := ctx.Value(requesterKey{}).(string)
	return ip, ok
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
