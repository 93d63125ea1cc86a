package authserver

// The health endpoint, for load balancers (no RFC).

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/tokengate/tokengate/authserver/oauth"
	"go.uber.org/zap"
)

// Health is the answer of the health endpoint, for load balancers: 200
// when the store answers and a signing key is loaded, 503 otherwise.
type Health struct {
	Status string `json:"status"` // "ok" or "unavailable"
	// Reason says what is wrong, without internal detail (the log has it).
	Reason string `json:"reason,omitempty"`
}

// InstanceHeader carries Config.Instance on health answers: a header, so
// that load balancers matching the body see it unchanged.
const InstanceHeader = "Tokengate-Instance"

// healthCheck caches the store probe for a second, so that a flood of
// health requests costs the store one read a second.
type healthCheck struct {
	mu     sync.Mutex
	at     time.Time
	result *Health
}

const healthCacheFor = time.Second

// Health probes the store and the keys.
func (s *Server) Health(ctx context.Context) *Health {
	s.rt.health.mu.Lock()
	defer s.rt.health.mu.Unlock()
	if s.rt.health.result != nil && time.Since(s.rt.health.at) < healthCacheFor {
		return s.rt.health.result
	}
	h := &Health{Status: "ok"}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch _, err := s.store.Keys(ctx); {
	case err != nil:
		s.obs.log.Error("health check: the store is unreachable", zap.Error(err))
		h = &Health{Status: "unavailable", Reason: "the store is unreachable"}
	case s.storeDataLost():
		h = &Health{Status: "unavailable", Reason: "the store lost its data; this instance is writing back its keys and revocations"}
	case !s.rt.keys.CanSign(time.Now()):
		h = &Health{Status: "unavailable", Reason: "no signing key is loaded"}
	case s.rt.revocations.Stale():
		h = &Health{Status: "unavailable", Reason: "revocations are stale: the store was unreachable too long"}
	}
	s.rt.health.at, s.rt.health.result = time.Now(), h
	return h
}

// handleHealth is GET /oauth/health.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		oauth.WriteError(w, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodHead))
		return
	}
	h := s.Health(r.Context())
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	if s.cfg.Instance != "" {
		w.Header().Set(InstanceHeader, s.cfg.Instance)
	}
	oauth.WriteJSON(w, status, h)
}
