package authserver

// RFC 6749 §10.10 and RFC 8628 §5.1: limits on guessing, counted per address.

import (
	"net"
	"net/http"

	"github.com/tokengate/tokengate/authserver/oauth"
)

// addressKey is the requester's address as limits count it (see
// oauth.AddressKey): the one withRequester read, when it did.
func (s *Server) addressKey(r *http.Request) string {
	ip, ok := oauth.Requester(r.Context())
	if !ok {
		ip = s.clientIP(r)
	}
	return oauth.AddressKey(ip)
}

// clientIP is the requester's address, as the embedding server determined
// it (e.g. behind trusted proxies), else the connection's.
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
