package authserver

import (
	"github.com/tokengate/tokengate/authserver/oauth"
	"go.uber.org/zap"
)

// AddAudit records an audit event in a, as the server's audit lines do.
func AddAudit(a *AuditRing, event string, fields ...zap.Field) { a.add(event, fields) }

// StoreError is the OAuth error a store failure while doing what gets.
func StoreError(s *Server, what string, err error) *oauth.Error {
	return s.obs.failures.Store(what, err)
}
