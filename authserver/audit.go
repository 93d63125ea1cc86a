package authserver

// The audit log: one line per security event, never a secret.

import (
	"context"
	"net/http"

	"go.uber.org/zap"
)

// The audit log is one structured line per security event — tokens issued,
// refused, refreshed and revoked; logins; consents; client registrations —
// naming client, subject, grant, scope, jti and the requester's IP, never a
// token, code, secret or password. The lines go to the "audit" child of the
// server's logger (in Caddy, "oauth2.audit"), so that operators can route
// them to a file of their own.

type requesterKey struct{}

// withRequester remembers who sent each request, for the audit lines of
// work done on its behalf deeper down.
func (s *Server) withRequester(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requesterKey{}, s.clientIP(r))))
	}
}

// audit writes one audit line, adding the requester's IP when ctx is a
// request's.
func (s *Server) audit(ctx context.Context, event string, fields ...zap.Field) {
	if ce := s.auditLog.Check(zap.InfoLevel, event); ce != nil {
		if ip, ok := ctx.Value(requesterKey{}).(string); ok {
			fields = append(fields, zap.String("remote_ip", ip))
		}
		ce.Write(fields...)
	}
}
