package authserver

import (
	"github.com/tokengate/tokengate/authserver/oauth"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// BcryptRuns is how many bcrypt comparisons of client secrets s has run.
func BcryptRuns(s *Server) int64 { return s.people.secrets.BcryptRuns() }

// DummyHashCost is the bcrypt cost unknown usernames' passwords are
// checked at.
func DummyHashCost(s *Server) int {
	c, _ := bcrypt.Cost(s.people.dummyHash())
	return c
}

// AddAudit records an audit event in a, as the server's audit lines do.
func AddAudit(a *AuditRing, event string, fields ...zap.Field) { a.add(event, fields) }

// StoreError is the OAuth error a store failure while doing what gets.
func StoreError(s *Server, what string, err error) *oauth.Error { return s.storeError(what, err) }
