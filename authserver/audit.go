package authserver

// The audit log: one line per security event, never a secret.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tokengate/tokengate/authserver/oauth"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The audit log is one structured line per security event — tokens issued,
// refused, refreshed and revoked; logins; consents; client registrations —
// naming client, subject, grant, scope, jti and the requester's IP, never a
// token, code, secret or password. The lines go to the "audit" child of the
// server's logger (in Caddy, "oauth2.audit"), so that operators can route
// them to a file of their own.

// withRequester remembers who sent each request, for the audit lines of
// work done on its behalf deeper down.
func (s *Server) withRequester(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(oauth.WithRequester(r.Context(), s.clientIP(r))))
	}
}

// audit writes one audit line, adding the requester's IP when ctx is a
// request's, and keeps it in the recent events (Config.AuditRing).
func (s *Server) audit(ctx context.Context, event string, fields ...zap.Field) {
	if ip, ok := oauth.Requester(ctx); ok {
		fields = append(fields, zap.String("remote_ip", ip))
	}
	if ce := s.obs.audit.Check(zap.InfoLevel, event); ce != nil {
		ce.Write(fields...)
	}
	s.cfg.AuditRing.add(event, fields)
}

// AuditEvent is one audit line, as the console shows it.
type AuditEvent struct {
	At     time.Time
	Event  string
	Fields []AuditField
}

// AuditField is one field of an audit line, in the line's order.
type AuditField struct{ Key, Value string }

// AuditRing keeps the latest audit events of this process, for the admin
// console: a fixed number, the oldest dropped first. It is one process's
// view: with several instances each holds what it did itself, and the
// complete record is the audit log.
type AuditRing struct {
	mu     sync.Mutex
	events []AuditEvent
	next   int
	full   bool
}

// NewAuditRing keeps the latest size events.
func NewAuditRing(size int) *AuditRing { return &AuditRing{events: make([]AuditEvent, size)} }

// add records an event; a nil ring records nothing.
func (a *AuditRing) add(event string, fields []zap.Field) {
	if a == nil || len(a.events) == 0 {
		return
	}
	out := make([]AuditField, 0, len(fields))
	var enc *zapcore.MapObjectEncoder
	for _, f := range fields {
		if f.Type == zapcore.StringType {
			// Nearly every field: no encoder, no allocation (the token
			// endpoint writes one event per token). An empty one (no
			// grant for client credentials) says nothing: not shown.
			if f.String != "" {
				out = append(out, AuditField{f.Key, f.String})
			}
			continue
		}
		if enc == nil {
			enc = zapcore.NewMapObjectEncoder()
		}
		f.AddTo(enc)
		if v, ok := enc.Fields[f.Key]; ok {
			out = append(out, AuditField{f.Key, fmt.Sprint(v)})
		}
	}
	at := time.Now().UTC()
	a.mu.Lock()
	a.events[a.next] = AuditEvent{At: at, Event: event, Fields: out}
	a.next++
	if a.next == len(a.events) {
		a.next, a.full = 0, true
	}
	a.mu.Unlock()
}

// Recent returns the kept events, newest first.
func (a *AuditRing) Recent() []AuditEvent {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []AuditEvent
	for i := a.next - 1; i >= 0; i-- {
		out = append(out, a.events[i])
	}
	for i := len(a.events) - 1; a.full && i >= a.next; i-- {
		out = append(out, a.events[i])
	}
	return out
}
