// Package logout ends people's browser sessions on every instance and tells
// the applications that got ID tokens in them (OpenID Connect Back-Channel
// Logout 1.0): when a person signs out (RP-initiated logout, the account
// page), when an administrator revokes the person or one of their grants,
// and when they are offboarded.
package logout

// OpenID Connect RP-Initiated Logout 1.0 §2 and Back-Channel Logout 1.0 §2.7:
// ending a session at the OP, and which relying parties hear of it.

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/outbound"
)

// Config is logout's part of the server's configuration.
type Config struct {
	// Issuer is the iss of logout tokens.
	Issuer string
	// SessionTTL is the longest a browser session lives: an ended one is
	// remembered that long, on every instance.
	SessionTTL time.Duration
	// Retries are the waits between a failed delivery and its next
	// attempt (default DefaultRetries).
	Retries []time.Duration
}

// DefaultRetries space a delivery's three attempts: enough for a relying
// party restarting, short enough that the person's sign-out reaches it
// while it still matters.
var DefaultRetries = []time.Duration{time.Second, 4 * time.Second}

// Stores are the store roles logout uses.
type Stores interface {
	store.GrantStore      // which clients got ID tokens in a session
	store.RevocationStore // ended sessions, for every instance
}

// Metrics counts deliveries of logout tokens.
type Metrics interface {
	// BackchannelLogout counts a delivery's result: one of Results.
	BackchannelLogout(result string)
}

// Results are what BackchannelLogout counts: delivered, failed (every
// attempt), dropped (too many waiting), so that an exporter can show each
// series at 0 before its first event.
var Results = []string{"delivered", "failed", "dropped"}

// Collaborators are what logout works with besides the store.
type Collaborators struct {
	// Keys sign logout tokens as the client's ID tokens are signed.
	Keys *keys.Ring
	// Clients finds where a client is told (backchannel_logout_uri).
	Clients *client.Registry
	// Revocations is the in-memory revocation state every check reads.
	Revocations *introspect.Revocations
	// Trusted reaches the URLs the operator wrote (configured and
	// admin-registered clients); Guarded those clients wrote themselves.
	Trusted, Guarded *outbound.Client
	Audit            oauth.Audit
	Metrics          Metrics
	Log              *zap.Logger
}

// queueSize bounds the deliveries waiting: an administrator revoking many
// people at once fills it, and what does not fit is counted as dropped
// rather than held in memory without bound.
const queueSize = 1024

// Service ends sessions and tells relying parties: its deliveries run
// while Run does.
type Service struct {
	cfg         Config
	store       Stores
	keys        *keys.Ring
	clients     *client.Registry
	revocations *introspect.Revocations
	trusted     *outbound.Client
	guarded     *outbound.Client
	audit       oauth.Audit
	metrics     Metrics
	log         *zap.Logger
	queue       chan job
}

// New is logout over st, with c.
func New(cfg Config, st Stores, c Collaborators) *Service {
	if cfg.Retries == nil {
		cfg.Retries = DefaultRetries
	}
	return &Service{cfg: cfg, store: st, keys: c.Keys, clients: c.Clients, revocations: c.Revocations, trusted: c.Trusted, guarded: c.Guarded,
		audit: c.Audit, metrics: c.Metrics, log: c.Log, queue: make(chan job, queueSize)}
}

// Ended says whether the browser session sid, in which subject signed in
// at authTime, was ended since: no store round trip.
func (s *Service) Ended(sid, subject string, authTime time.Time) bool {
	return s.revocations.IsSessionEnded(sid, subject, authTime)
}

// EndSession ends the browser session sid of subject on every instance,
// and tells every client that got an ID token in it. by says who ended
// it, for the audit line. The telling happens after EndSession returns.
func (s *Service) EndSession(ctx context.Context, sid, subject, by string) error {
	now := time.Now().UTC()
	rv := store.Revocation{Kind: store.RevokeSession, Value: sid, At: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.Revoke(ctx, rv); err != nil {
		return err
	}
	s.revocations.Apply(rv)
	s.audit(ctx, "session ended", zap.String("sub", subject), zap.String("by", by))
	s.enqueue(job{subject: subject, sid: sid})
	return nil
}

// SubjectEnded tells every client that got an ID token from subject, in
// any session, that it ended: the person was revoked or offboarded (the
// revocation ends their sessions, see introspect.Revocations).
func (s *Service) SubjectEnded(subject string) { s.enqueue(job{subject: subject}) }

// GrantEnded tells g's client that the session g was given in ended for
// it: the grant was revoked.
func (s *Service) GrantEnded(g *store.Grant) {
	if g.OpenID != nil {
		s.enqueue(job{notices: []notice{{clientID: g.ClientID, subject: g.Subject, sid: g.OpenID.SID}}})
	}
}

// job is a session (sid) or every session (sid "") of subject whose
// clients are to be told; or the notices themselves.
type job struct {
	subject, sid string
	notices      []notice
}

// notice is one logout token to deliver.
type notice struct {
	clientID, subject, sid string
}

func (s *Service) enqueue(j job) {
	select {
	case s.queue <- j:
	default:
		s.metrics.BackchannelLogout("dropped")
		s.log.Warn("back-channel logout dropped: too many waiting", zap.String("sub", j.subject))
	}
}

// notices are the logout tokens j asks for: one per client and session
// among subject's grants with openid.
func (s *Service) notices(ctx context.Context, j job) ([]notice, error) {
	if j.notices != nil {
		return j.notices, nil
	}
	grants, err := s.store.Grants(ctx, store.GrantQuery{Subject: j.subject})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	seen := map[notice]bool{}
	var out []notice
	for _, g := range grants {
		if g.OpenID == nil || (j.sid != "" && g.OpenID.SID != j.sid) {
			continue
		}
		n := notice{clientID: g.ClientID, subject: g.Subject, sid: g.OpenID.SID}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}
