// Package store defines what tokengate keeps between requests and across
// instances, and the contract every implementation must honour.
//
// Everything here expires on its own: each record carries the time after which
// the store may forget it. Single-use records (authorization codes, refresh
// tokens) are consumed atomically: of any number of concurrent redemptions
// exactly one sees the first use.
package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// Errors every implementation returns (possibly wrapped) so that callers can
// tell the protocol cases apart with errors.Is.
var (
	// ErrNotFound means no live record is under that key (it never existed,
	// or expired).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyUsed means a single-use record was consumed before. It is
	// returned alongside so the caller can revoke what descends from it.
	ErrAlreadyUsed = errors.New("already used")
	// ErrKeyMismatch means the refresh token is bound to a DPoP key the
	// request did not prove (RFC 9449 §5); the token is left unused.
	ErrKeyMismatch = errors.New("bound to another key")
	// ErrExists means a create-only write found a live record under that key.
	ErrExists = errors.New("already exists")
	// ErrConflict means a compare-and-swap lost against a concurrent writer.
	ErrConflict = errors.New("conflicting concurrent update")
)

// Store is the persistence contract shared by the embedded (bbolt) and the
// Redis implementations, composed of one interface per role, so that each
// consumer can ask for the least it needs. The contract test suite in
// storetest runs against both. Implementations must be safe for
// concurrent use.
type Store interface {
	KeyStore
	CodeStore
	DeviceStore
	RefreshStore
	RevocationStore
	ClientStore
	GrantStore
	CounterStore
	RateStore
	UserStore
	EdgeSessionStore

	// Generation returns the storage's generation marker: a random value
	// written when the storage is first used, and written anew (created)
	// whenever it is missing. A generation that changes under a running
	// instance means the storage lost its data (a Redis restarted without
	// persistence, FLUSHDB, eviction), so that the instance can put back
	// what it still holds.
	Generation(ctx context.Context) (gen string, created bool, err error)

	// Close releases the store's resources.
	Close() error
}

// Warner is a Store's optional ability to say what in its server's
// configuration could lose tokengate's data (a Redis that persists
// nothing, or evicts keys). The authorization server logs each warning
// at start.
type Warner interface {
	Warnings(ctx context.Context) []string
}

// KeyStore keeps the issuer's signing key ring.
type KeyStore interface {
	// Keys returns the signing key ring; an empty ring with Version 0 when
	// none was ever saved.
	Keys(ctx context.Context) (*KeyRing, error)
	// SwapKeys saves ring if the stored ring still has version prev, and
	// stores it as version prev+1 (ring.Version is set accordingly).
	// Otherwise it returns ErrConflict and the caller re-reads.
	SwapKeys(ctx context.Context, prev int64, ring *KeyRing) error
}

// CodeStore keeps authorization codes.
type CodeStore interface {
	// CreateCode stores an authorization code under its grant and hash;
	// with c.Grant, it records that grant too, as PutGrant does, in the
	// same step (so the authorization endpoint pays no second write).
	CreateCode(ctx context.Context, c *AuthCode) error
	// ConsumeCode redeems the code (grantID, hash) for clientID. The first
	// redemption returns it and, when first is given, stores the grant's
	// first refresh token (see Successor) in the same atomic step; later
	// ones return it with ErrAlreadyUsed: a code is never redeemed twice,
	// retry or not (RFC 6749 §4.1.2), so first.Grace is ignored. A code
	// issued to another client is returned untouched, so nobody can burn
	// a code they do not own.
	ConsumeCode(ctx context.Context, grantID, hash, clientID string, first *Successor) (*AuthCode, error)
}

// DeviceStore keeps device authorizations (RFC 8628).
type DeviceStore interface {
	// CreateDeviceCode stores a device authorization under its grant,
	// findable by its user code; ErrExists when a live one already has
	// that user code.
	CreateDeviceCode(ctx context.Context, d *DeviceCode) error
	// DeviceCode returns the device authorization with that user code.
	DeviceCode(ctx context.Context, userCode string) (*DeviceCode, error)
	// UpdateDeviceCode applies fn to the device authorization with that
	// user code atomically (fn may run more than once on contention) and
	// saves the result. fn returning an error aborts without saving; fn
	// must not change the user code or the grant.
	UpdateDeviceCode(ctx context.Context, userCode string, fn func(*DeviceCode) error) (*DeviceCode, error)
	// PollDeviceCode records one poll of a device (see DevicePoll) in one
	// atomic step and returns the authorization as the poll left it.
	PollDeviceCode(ctx context.Context, p DevicePoll) (*DeviceCode, PollOutcome, error)
}

// RefreshStore keeps the refresh state of grants: one record per grant,
// however often its token rotated, so that a grant's state does not grow
// with its use.
//
// A grant's refresh tokens are numbered. Its first, stored when its code
// or device authorization is redeemed, is generation 1; each rotation's
// successor is one more. The record holds the current token (its hash and
// generation) and the previous token's hash, for the retry grace (see
// Successor). Every earlier token is known by its generation alone, which
// the token carries under the server's MAC (the token side checks that MAC
// before it asks): a genuine token of an earlier generation is a used one,
// without a record of its own, for as long as the grant lives.
//
// Tokens from before generations (Presented.Gen 0) each have a record of
// their own, as they always had. They keep working: the first rotation of
// one moves its grant into a refresh state, whose previous token it is.
type RefreshStore interface {
	// RefreshToken returns the grant's refresh state if p is its current
	// token; with ErrAlreadyUsed if p is an earlier one; ErrNotFound if
	// the grant has no refresh state, or p is none of its tokens.
	RefreshToken(ctx context.Context, grantID string, p Presented) (*RefreshToken, error)
	// RotateRefreshToken consumes the token p of the grant for clientID
	// and, if it is the current token (or a retry of the previous one,
	// see Successor), stores next as the current token, of generation
	// p.Gen+1, in the same atomic step. It returns the refresh state as p
	// found it; with ErrAlreadyUsed if p was used before (next is then not
	// stored). The state of another client's grant is returned untouched,
	// and so is one bound to a DPoP key other than next.JKT, with
	// ErrKeyMismatch. The successor is bound to the grant's key, or to
	// next.JKT when the grant had none.
	RotateRefreshToken(ctx context.Context, grantID string, p Presented, clientID string, next Successor) (*RefreshToken, error)
}

// Presented is a refresh token as a request presents it.
type Presented struct {
	// Hash is the hash of the token's secret.
	Hash string
	// Gen is the token's generation (see RefreshStore), as the token
	// carries it under the server's MAC; 0 for a token from before
	// generations.
	Gen uint64
}

// FirstGen is the generation of a grant's first refresh token.
const FirstGen = 1

// RotationOutcome is what presenting a refresh token to a grant's refresh
// state means (see Rotation).
type RotationOutcome int

const (
	// RotateCurrent: p is the current token; its successor takes over.
	RotateCurrent RotationOutcome = iota
	// RotateRetry: p is the previous token, retried within the grace
	// while the current one is unused; the current is retired and the
	// successor takes its place, of the same generation.
	RotateRetry
	// RotateUsed: p is an earlier token of the grant, or a retired one.
	RotateUsed
	// RotateUnknown: p is no token of this refresh state.
	RotateUnknown
	// RotateOtherClient: the grant is another client's; nothing changes.
	RotateOtherClient
	// RotateWrongKey: the grant is bound to a DPoP key the request did
	// not prove; nothing changes.
	RotateWrongKey
)

// Rotation decides what presenting p for clientID, with successor next,
// does to the refresh state t. The embedded store follows it in Go and
// Redis's script in Lua; the contract suite holds both to it.
func (t *RefreshToken) Rotation(p Presented, clientID string, next Successor) RotationOutcome {
	current := p.Gen == t.Gen && subtle.ConstantTimeCompare([]byte(p.Hash), []byte(t.Hash)) == 1
	switch {
	case p.Gen > t.Gen:
		return RotateUnknown
	case t.ClientID == clientID && t.JKT != "" && t.JKT != next.JKT:
		// Used or not, a bound token is nothing without its key: no
		// retry, and no reuse verdict that would end the grant.
		return RotateWrongKey
	case current && t.ClientID != clientID:
		// Nobody can burn a token they do not own; presenting a used
		// one is reuse, whoever does it.
		return RotateOtherClient
	case current:
		return RotateCurrent
	case p.Gen+1 == t.Gen && t.ClientID == clientID && t.PrevHash != "" &&
		subtle.ConstantTimeCompare([]byte(p.Hash), []byte(t.PrevHash)) == 1 &&
		next.Grace > 0 && next.IssuedAt.Sub(t.RotatedAt) <= next.Grace:
		return RotateRetry
	}
	return RotateUsed
}

// Check says what p is to the refresh state t, for a read: nil for its
// current token, ErrAlreadyUsed for an earlier (or retired) one,
// ErrNotFound for none of its tokens.
func (t *RefreshToken) Check(p Presented) error {
	switch {
	case p.Gen > t.Gen:
		return ErrNotFound
	case p.Gen == t.Gen && subtle.ConstantTimeCompare([]byte(p.Hash), []byte(t.Hash)) == 1:
		return nil
	}
	return ErrAlreadyUsed
}

// Rotated is the refresh state after presenting p to t made outcome
// (RotateCurrent or RotateRetry) with successor next: next is the
// current token, of generation p.Gen+1; the previous is p after a first
// use, or stays what it was after a retry, whose grace runs from that
// first use still (retries do not move it).
func (t *RefreshToken) Rotated(p Presented, outcome RotationOutcome, next Successor) *RefreshToken {
	if t.JKT != "" {
		next.JKT = t.JKT // bound once, bound for good
	}
	r := next.Of(t.GrantID, t.ClientID, t.Subject, t.Scope, t.AuthTime, t.Resource, t.OpenID)
	r.Gen = p.Gen + 1
	r.PrevHash, r.RotatedAt = p.Hash, next.IssuedAt
	if outcome == RotateRetry {
		r.PrevHash, r.RotatedAt = t.PrevHash, t.RotatedAt
	}
	return r
}

// RevocationStore keeps revocations and tells every instance of them.
type RevocationStore interface {
	// Revoke records a revocation until r.ExpiresAt.
	Revoke(ctx context.Context, r Revocation) error
	// Revocations lists every live revocation.
	Revocations(ctx context.Context) ([]Revocation, error)
	// WatchRevocations calls apply with every revocation made through any
	// handle on this storage (every instance, for a shared store), as it
	// happens; and resync whenever watching (re)starts, so the caller
	// reloads the full state and misses nothing said while it was not
	// listening. It returns when ctx ends.
	WatchRevocations(ctx context.Context, apply func(Revocation), resync func())
}

// ClientStore keeps registered clients.
type ClientStore interface {
	// PutClient creates or replaces a registered client.
	PutClient(ctx context.Context, c *Client) error
	// Client returns a registered client.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients lists every registered client, ordered by ID.
	Clients(ctx context.Context) ([]*Client, error)
	// CountClients is how many registered clients there are, without
	// reading them (registration's budget asks it at every registration).
	CountClients(ctx context.Context) (int, error)
	// DeleteClient removes a registered client; ErrNotFound if absent.
	DeleteClient(ctx context.Context, id string) error
	// UpdateClient changes a registered client atomically: fn edits the
	// stored client (it may run more than once, on a fresh copy each
	// time), and no other write lands between its read and the write, so
	// a concurrent change (a new secret, RFC 7592's PUT, a recorded use)
	// is never undone and a deleted client stays deleted. An error from
	// fn aborts the update and is returned; ErrNotFound if absent.
	UpdateClient(ctx context.Context, id string, fn func(c *Client) error) error
}

// GrantStore indexes the grants people gave applications, by subject and
// by client, for people's account page and the admin console.
//
// A grant's record lives beside its codes and refresh tokens (in a Redis
// Cluster, in their slot), so that the redemption or rotation that issues
// a token also records its use in the same atomic step and round trip:
// ConsumeCode, PollDeviceCode (on redemption) and RotateRefreshToken (on a
// first use or a retry) set LastUsedAt to the use's time (the successor's
// IssuedAt, else now) when it is zero or GrantTouchInterval old, and then
// move ExpiresAt to the successor's expiry plus GrantTouchInterval (so that
// the uses not written in between are covered). Nothing is written for a
// grant without a record.
type GrantStore interface {
	// PutGrant records g and indexes it under its subject and its client
	// until g.EndsBy. A subject's index keeps its MaxGrantsPerSubject
	// grants that end last, dropping the others from both indexes: a
	// person authorizing without end cannot grow them without bound.
	PutGrant(ctx context.Context, g *Grant) error
	// Grant returns a live grant record, used or not.
	Grant(ctx context.Context, id string) (*Grant, error)
	// Grants lists the live grants of q.Subject or of q.ClientID (one
	// alone, or both: the subject's grants to that client, read from the
	// subject's index without the records of other clients' grants) that
	// issued a token (LastUsedAt set), newest (CreatedAt) first, at most
	// q.Limit of them (MaxGrantsPerSubject when 0). Entries of grants
	// whose record is gone are skipped; they end at their EndsBy, or
	// DeleteGrant removes them.
	Grants(ctx context.Context, q GrantQuery) ([]*Grant, error)
	// DeleteGrant forgets the grant: its record and its index entries;
	// ErrNotFound without a live record.
	DeleteGrant(ctx context.Context, id string) error
	// AddGrantActor notes that actor acted for the grant's subject with
	// its tokens (token exchange): last in g.Actors, once, the oldest
	// dropped past MaxGrantActors. ErrNotFound without a live record.
	AddGrantActor(ctx context.Context, id, actor string) error
}

// MaxGrantActors bounds a grant's Actors: subjects that exchange its
// tokens cannot grow its record without bound.
const MaxGrantActors = 8

// WithActor is actors with actor last, once, at most MaxGrantActors of
// them (the oldest dropped). The Redis store's script follows the same
// rule.
func WithActor(actors []string, actor string) []string {
	out := slices.DeleteFunc(slices.Clone(actors), func(a string) bool { return a == actor })
	out = append(out, actor)
	return out[max(0, len(out)-MaxGrantActors):]
}

// GrantQuery selects the grants of a subject, of a client, or of a
// subject to a client.
type GrantQuery struct {
	Subject, ClientID string
	Limit             int
}

// GrantIndexOf checks q and says which index it reads: "s" and the
// subject (whose entries name their client, so that a query of both
// keeps only that client's), or "c" and the client.
func GrantIndexOf(q GrantQuery) (kind, owner string, err error) {
	switch {
	case q.Subject == "" && q.ClientID == "":
		return "", "", errors.New("a grant query names a subject, a client or both")
	case q.Subject != "":
		return "s", q.Subject, nil
	}
	return "c", q.ClientID, nil
}

// NewestGrants orders grants newest first and keeps at most limit
// (MaxGrantsPerSubject when 0).
func NewestGrants(grants []*Grant, limit int) []*Grant {
	if limit <= 0 {
		limit = MaxGrantsPerSubject
	}
	slices.SortFunc(grants, func(a, b *Grant) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(grants) > limit {
		grants = grants[:limit]
	}
	return grants
}

// MaxGrantsPerSubject bounds a subject's grant index (see PutGrant).
const MaxGrantsPerSubject = 500

// ViaIDJAG is Grant.Via of a grant an identity assertion (ID-JAG) made.
const ViaIDJAG = "id_jag"

// GrantTouchInterval is how stale a grant's LastUsedAt may be: the token
// endpoint writes it at most this often per grant.
const GrantTouchInterval = time.Minute

// Grant is one authorization a person gave an application: every token
// descending from one code or device approval. It is recorded when the
// person approves, and listed once a token was issued from it.
type Grant struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Subject  string `json:"sub"`
	Scope    string `json:"scope"`
	// Resource is the RFC 8707 resource the grant is for; "" for none.
	Resource string `json:"resource,omitempty"`
	// Login is how the person signed in: "password", "upstream" (an
	// earlier handler authenticated them) or the login provider's name.
	Login string `json:"login,omitempty"`
	// Via says how a grant was given when not by the person at a consent
	// page: ViaIDJAG, their organisation's identity assertion, the
	// client acting for them on the enterprise's word. "" otherwise.
	Via string `json:"via,omitempty"`
	// Actors are who acted for the subject with the grant's tokens (token
	// exchange), most recent last; see AddGrantActor.
	Actors []string `json:"actors,omitempty"`
	// OpenID is the person's identity for a grant with the openid scope:
	// the browser session it was given in (back-channel logout tells its
	// client when that ends) and the claims userinfo answers with.
	OpenID    *OpenID   `json:"oidc,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is when a token was last issued from the grant, at most
	// GrantTouchInterval stale; zero until its code or device
	// authorization is redeemed.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// ExpiresAt is when the record may be forgotten (see GrantStore).
	ExpiresAt time.Time `json:"expires_at"`
	// EndsBy is the latest the grant can live (grant_max_age after the
	// person signed in): its index entries last until then.
	EndsBy time.Time `json:"ends_by"`
}

// Touch is the change a use at "at" makes to g when its successor
// expires at until (zero for none), per GrantStore; false for no change.
// The stores' scripts follow the same rule.
func (g *Grant) Touch(at, until time.Time) bool {
	if !g.LastUsedAt.IsZero() && at.Sub(g.LastUsedAt) < GrantTouchInterval {
		return false
	}
	g.LastUsedAt = at
	if exp := until.Add(GrantTouchInterval); !until.IsZero() && exp.After(g.ExpiresAt) {
		g.ExpiresAt = exp
	}
	return true
}

// CounterStore keeps the rate limits' counters.
type CounterStore interface {
	// Incr adds one to the counter key in its fixed window and returns the
	// new count and when the window ends. The window starts at the first
	// increment.
	Incr(ctx context.Context, key string, window time.Duration) (count int64, resetAt time.Time, err error)
	// Counter reads a counter without counting: 0 when it has no live window.
	Counter(ctx context.Context, key string) (count int64, resetAt time.Time, err error)
}

// RateStore counts requests against rate limits every instance shares.
type RateStore interface {
	// AllowRate takes one request from key's budget of n per period, n at
	// once at most (GCRA: the rule GCRA states; Redis runs the same in
	// one script); a refused request takes nothing.
	AllowRate(ctx context.Context, key string, n int, period time.Duration) (RateResult, error)
}

// TokenRate is a client's token_rate_limit.
type TokenRate struct {
	N      int
	Period time.Duration
}

// RateResult is a shared rate limit's answer.
type RateResult struct {
	Allowed bool
	// Remaining is how many more requests would be let through now.
	Remaining int
	// RetryAfter is how long until the next is let through (0 when
	// allowed); ResetAfter until the whole budget is back.
	RetryAfter, ResetAfter time.Duration
}

// GCRA is the generic cell rate algorithm for one request at now, the
// budget's theoretical arrival time being tat (zero for none): n per
// period, n at once. It returns the result and the new tat to keep until
// it passes (unchanged when refused).
func GCRA(tat, now time.Time, n int, period time.Duration) (RateResult, time.Time) {
	emission := period / time.Duration(n)
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(emission)
	allowAt := next.Add(-emission * time.Duration(n))
	diff := now.Sub(allowAt)
	if diff < 0 {
		return RateResult{RetryAfter: -diff, ResetAfter: tat.Sub(now)}, tat
	}
	return RateResult{Allowed: true, Remaining: int(diff / emission), ResetAfter: next.Sub(now)}, next
}

// UserStore records which people the configuration has had.
type UserStore interface {
	// RecordUsers records the configuration's usernames, so that a person
	// removed from it is offboarded on every instance. In one atomic step
	// it marks names as configured, marks each recorded name missing from
	// names as removed at now (and returns it in newly the first time),
	// and forgets a removed name once forget has passed since its
	// removal. It returns in removed every name removed and not yet
	// forgotten, newly's included.
	RecordUsers(ctx context.Context, names []string, now time.Time, forget time.Duration) (removed, newly []string, err error)
}

// KeyRing is every signing key an issuer currently knows, versioned so that
// instances sharing a store agree on rotations.
type KeyRing struct {
	Version int64        `json:"version"`
	Keys    []SigningKey `json:"keys"`
	// CookieSecret signs the login session and CSRF tokens of every
	// instance of the issuer.
	CookieSecret []byte `json:"cookie_secret,omitempty"`
}

// Clone is a deep copy of the ring.
func (r *KeyRing) Clone() *KeyRing {
	c := *r
	c.Keys = slices.Clone(r.Keys)
	c.CookieSecret = slices.Clone(r.CookieSecret)
	return &c
}

// SigningKey is one private key with its lifecycle.
type SigningKey struct {
	ID  string `json:"kid"`
	Alg string `json:"alg"`
	// JWK is the private key as a JSON Web Key.
	JWK []byte `json:"jwk"`
	// CreatedAt is when it was generated; it is published from then on.
	CreatedAt time.Time `json:"created_at"`
	// ActiveAt is when it starts signing; publishing a key before it signs
	// lets downstream JWKS caches pick it up first.
	ActiveAt time.Time `json:"active_at"`
	// RetiredAt is when a newer key replaced it; zero while it may sign.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// ExpiresAt is when no token it signed can still be valid; the key
	// may then be dropped. Zero while it signs.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// AuthCode is an authorization code, stored under its grant and the hash of
// its secret (the code is "<grant ID>.<secret>", like a refresh token, so
// that in a Redis Cluster a code and the grant's first refresh token share
// a slot).
type AuthCode struct {
	Hash     string `json:"hash"`
	ClientID string `json:"client_id"`
	Subject  string `json:"sub"`
	// RedirectURI is where the code was sent; RedirectURIGiven says the
	// request named it, so the token request must repeat it (RFC 6749 §4.1.3).
	RedirectURI         string    `json:"redirect_uri"`
	RedirectURIGiven    bool      `json:"redirect_uri_given,omitempty"`
	Scope               string    `json:"scope"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	GrantID             string    `json:"grant_id"`
	AuthTime            time.Time `json:"auth_time"`
	ExpiresAt           time.Time `json:"expires_at"`
	// Resource is the RFC 8707 resource the grant is for; empty for none.
	Resource string `json:"resource,omitempty"`
	// Nonce is the authorization request's nonce, which the ID token the
	// code is exchanged for repeats (OpenID Connect Core §3.1.2.1).
	Nonce string `json:"nonce,omitempty"`
	// OpenID is what the grant's ID tokens say, when it has openid.
	OpenID *OpenID `json:"oidc,omitempty"`
	// Grant, when set, is recorded with the code (see CreateCode); it is
	// not part of the code's record.
	Grant *Grant `json:"-"`
}

// OpenID is what a grant with the openid scope keeps for its ID tokens
// (OpenID Connect Core 1.0 §2, §5.1), from its code or device
// authorization to every refresh: the browser session the person approved
// it in, and their claims as they signed in (a login provider's people
// have no other record of them).
type OpenID struct {
	// SID is the browser session ("" when an earlier handler signed the
	// person in, which leaves no session of tokengate's to name).
	SID               string `json:"sid,omitempty"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     bool   `json:"email_verified,omitempty"`
}

// Successor is the refresh token a code or refresh token is exchanged for.
// The store derives the rest from the record it consumes (same grant,
// client, subject, scope and authentication time), so that redeeming one
// and storing the other is one atomic step: one round trip to a shared store.
//
// A retry is redeemed again: when the previous token is presented by the
// same client at most Grace after it was first exchanged (retries do not
// move that moment), and the successor that exchange stored has never been
// used (it is still the current token), that successor is retired and
// this one stored instead. A client whose answer was lost (a network cut,
// a store failover after the write) thus keeps its grant; if the retry
// was someone else's replay, the client's next use of the successor it
// holds is the reuse that revokes the grant.
//
// MaxAge, when set, is the grant's absolute lifetime: the successor
// expires at ExpiresAt or MaxAge after the grant's authentication time,
// whichever comes first, so that rotating never extends a grant.
type Successor struct {
	Hash      string
	IssuedAt  time.Time
	ExpiresAt time.Time
	Grace     time.Duration
	MaxAge    time.Duration
	// JKT is the DPoP key (thumbprint) the token request proved, for a
	// client whose refresh tokens are bound to it (a public client's,
	// RFC 9449 §5); "" for none. A first token is bound to it.
	JKT string
}

// Of is the refresh state s starts for a consumed record's grant: its
// first token. (Rotated makes a later one of it.)
func (s Successor) Of(grantID, clientID, subject, scope string, authTime time.Time, resource string, oidc *OpenID) *RefreshToken {
	exp := s.ExpiresAt
	if end := authTime.Add(s.MaxAge); s.MaxAge > 0 && !authTime.IsZero() && end.Before(exp) {
		exp = end
	}
	return &RefreshToken{GrantID: grantID, Hash: s.Hash, Gen: FirstGen, ClientID: clientID, Subject: subject, Scope: scope,
		AuthTime: authTime, IssuedAt: s.IssuedAt, ExpiresAt: exp, Resource: resource, JKT: s.JKT, OpenID: oidc}
}

// DeviceStatus is where a device authorization stands.
type DeviceStatus string

const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	// DeviceRedeemed means the token was issued; further polls are refused.
	DeviceRedeemed DeviceStatus = "redeemed"
)

// DeviceCode is a device authorization (RFC 8628), stored under its grant
// and found by its normalized user code; DeviceCodeHash identifies the
// polling device (the device code is "<grant ID>.<secret>").
type DeviceCode struct {
	UserCode       string        `json:"user_code"`
	DeviceCodeHash string        `json:"device_code_hash"`
	ClientID       string        `json:"client_id"`
	Scope          string        `json:"scope"`
	Status         DeviceStatus  `json:"status"`
	Subject        string        `json:"sub,omitempty"`
	GrantID        string        `json:"grant_id,omitempty"`
	AuthTime       time.Time     `json:"auth_time,omitzero"`
	Interval       time.Duration `json:"interval"`
	LastPoll       time.Time     `json:"last_poll,omitzero"`
	// ValidUntil is when the code expires for the device and the person;
	// the record lives on until ExpiresAt so that late polls can be told
	// expired_token and its user code is not handed out again meanwhile.
	ValidUntil time.Time `json:"valid_until"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Resource is the RFC 8707 resource the grant is for; empty for none.
	Resource string `json:"resource,omitempty"`
	// OpenID is set at approval for a grant with openid.
	OpenID *OpenID `json:"oidc,omitempty"`
}

// DevicePoll is one token request of a device (RFC 8628 §3.4). The store
// finds the authorization by GrantID and answers ErrNotFound unless Hash and
// ClientID match it. Then, in one atomic step:
//   - a redeemed authorization is PollUsed and one past ValidUntil is
//     PollExpired, both left as they are;
//   - a poll sooner than PollTolerance of the interval after the previous
//     one is PollSlowDown, and the interval grows by SlowDownStep (§3.5);
//   - otherwise the outcome is the status: PollPending, PollDenied, or
//     PollRedeemed for an approved one, which is marked redeemed and its
//     grant's first refresh token, First (if given), stored.
//
// Every poll but the first two kinds records Now as the last poll.
type DevicePoll struct {
	GrantID, Hash, ClientID string
	Now                     time.Time
	First                   *Successor
}

// PollOutcome is what a device poll found.
type PollOutcome string

const (
	PollPending  PollOutcome = "pending"
	PollDenied   PollOutcome = "denied"
	PollRedeemed PollOutcome = "redeemed"
	PollSlowDown PollOutcome = "slow_down"
	PollExpired  PollOutcome = "expired"
	PollUsed     PollOutcome = "used"
)

// Device polls may come up to a fifth of the interval early (clocks and
// networks jitter) before they count as too fast; each too-fast poll adds
// five seconds to the interval (RFC 8628 §3.5).
const (
	PollTolerance = 5
	SlowDownStep  = 5 * time.Second
)

// TooSoon says whether a poll at now is too fast for an authorization
// last polled at last with interval.
func TooSoon(now, last time.Time, interval time.Duration) bool {
	return !last.IsZero() && now.Sub(last) < interval-interval/PollTolerance
}

// RefreshToken is a grant's refresh state: its current refresh token and
// what every token of the grant shares (see RefreshStore). A grant is one
// authorization: every refresh and access token descending from one code
// or device approval shares it. A token from before generations (Gen 0)
// is a record of its own, under its grant and hash.
type RefreshToken struct {
	GrantID string `json:"grant_id"`
	// Hash is the current token's hash, and Gen its generation.
	Hash      string    `json:"hash"`
	Gen       uint64    `json:"gen,omitempty"`
	ClientID  string    `json:"client_id"`
	Subject   string    `json:"sub"`
	Scope     string    `json:"scope"`
	AuthTime  time.Time `json:"auth_time"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"expires_at"`
	// Resource is the RFC 8707 resource of the grant, carried from its
	// code or device authorization to every refresh token.
	Resource string `json:"resource,omitempty"`
	// JKT binds the token to a DPoP key: only a request proving it may
	// use it, and its successors are bound to it too.
	JKT string `json:"jkt,omitempty"`
	// PrevHash is the hash of the previous token (generation Gen-1) and
	// RotatedAt when it was first exchanged, for a retry of that exchange
	// (Successor.Grace); empty for a grant's first token.
	PrevHash  string    `json:"prev_hash,omitempty"`
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// OpenID is the grant's, carried from its code or device
	// authorization for the ID tokens of refreshes.
	OpenID *OpenID `json:"oidc,omitempty"`
}

// RevocationKind says what a Revocation names.
type RevocationKind string

const (
	// RevokeToken revokes one access token, by jti.
	RevokeToken RevocationKind = "jti"
	// RevokeGrant revokes every token of a grant.
	RevokeGrant RevocationKind = "grant"
	// RevokeClient revokes every token a client was issued before At.
	RevokeClient RevocationKind = "client"
	// RevokeSubject revokes every token a user was issued before At, and
	// ends their browser sessions signed in before it.
	RevokeSubject RevocationKind = "subject"
	// RevokeSession ends one browser session, by its ID (OpenID Connect's
	// sid), on every instance.
	RevokeSession RevocationKind = "session"
)

// Revocation is one entry of the revocation state every instance holds.
type Revocation struct {
	Kind  RevocationKind `json:"kind"`
	Value string         `json:"value"`
	// At is when it was made; for client and subject revocations, tokens
	// issued at or before it are revoked.
	At time.Time `json:"at"`
	// ExpiresAt is when every token it can affect has expired.
	ExpiresAt time.Time `json:"expires_at"`
}

// Client is a registered application.
type Client struct {
	ID      string `json:"client_id"`
	Name    string `json:"name"`
	Website string `json:"website,omitempty"`
	// SecretHash is how the secret is checked: "bcrypt:…" or "sha256:…";
	// empty for public clients.
	SecretHash   string   `json:"secret_hash,omitempty"`
	Public       bool     `json:"public,omitempty"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	GrantTypes   []string `json:"grant_types"`
	Scopes       []string `json:"scopes,omitempty"`
	Audience     []string `json:"audience,omitempty"`
	SkipConsent  bool     `json:"skip_consent,omitempty"`
	// RequireDPoP makes every token request carry a DPoP proof, so that
	// the client's access tokens are always bound (RFC 9449 §5.2's
	// dpop_bound_access_tokens).
	RequireDPoP    bool      `json:"require_dpop,omitempty"`
	ResourceServer bool      `json:"resource_server,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	// Source is "dynamic" for a client that registered itself (RFC 7591);
	// empty for one an administrator registered.
	Source string `json:"source,omitempty"`
	// RegistrationTokenHash checks the registration access token that
	// manages a dynamic registration (RFC 7592), like a secret.
	RegistrationTokenHash string `json:"registration_token_hash,omitempty"`
	// Metadata is a dynamic client's registered metadata, as answered.
	Metadata *ClientMetadata `json:"metadata,omitempty"`
	// LastUsedAt is when a dynamic client was last issued a token, to
	// the day: unused registrations expire.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// JWKS or JWKSURI hold the public keys of a client that authenticates
	// with private_key_jwt (RFC 7523) instead of a secret.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// OpenID Connect: where RP-initiated logout may send the person back
	// (RP-Initiated Logout §3), where a session's end is told (Back-Channel
	// Logout §2.2) and whether the client needs sid in what it is told,
	// and the algorithm of its ID tokens ("" for RS256).
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required,omitempty"`
	IDTokenAlg                       string   `json:"id_token_alg,omitempty"`
	// Exchange are the resources a client with the token_exchange grant
	// may exchange subject tokens into (RFC 8693), each with the most
	// scope there; ExchangeFrom the issuers of those subject tokens
	// ("self", the default: this issuer).
	Exchange     []ExchangeTarget `json:"exchange,omitempty"`
	ExchangeFrom []string         `json:"exchange_from,omitempty"`
	// Federated makes the client authenticate with a workload token of
	// another issuer (a CI job's, a Kubernetes service account's) instead
	// of a secret.
	Federated *Federation `json:"federated,omitempty"`
	// TokenRate limits its requests to the token endpoint, counted in
	// the store (every instance): TokenRate.N per TokenRate.Period; nil
	// for no limit. From the configuration only.
	TokenRate *TokenRate `json:"-"`
}

// Federation is a client's workload identity: tokens of Issuer whose sub
// is Subject, for Audience (default: this issuer), authenticate it.
type Federation struct {
	Issuer   string `json:"issuer"`
	Subject  string `json:"subject"`
	Audience string `json:"audience,omitempty"`
}

// ExchangeTarget is a resource a client may exchange tokens into.
type ExchangeTarget struct {
	Resource string   `json:"resource"`
	Scopes   []string `json:"scopes"`
}

// ClientMetadata is RFC 7591 §2's client metadata, as a client registered
// it.
type ClientMetadata struct {
	RedirectURIs            []string        `json:"redirect_uris,omitempty"`
	ClientName              string          `json:"client_name,omitempty"`
	ClientURI               string          `json:"client_uri,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	ResponseTypes           []string        `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	ApplicationType         string          `json:"application_type,omitempty"`
	SoftwareID              string          `json:"software_id,omitempty"`
	SoftwareVersion         string          `json:"software_version,omitempty"`
	Contacts                []string        `json:"contacts,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	// DPoPBoundAccessTokens asks that every token request carry a DPoP
	// proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	// OpenID Connect's members (RP-Initiated Logout §3.1, Back-Channel
	// Logout §2.2, Registration §2).
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required,omitempty"`
	IDTokenSignedResponseAlg         string   `json:"id_token_signed_response_alg,omitempty"`
}

// NewGeneration draws a generation marker (see Store.Generation).
func NewGeneration() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TTL is the time left until t, at least one millisecond so that a record
// created at its expiry is still written (and then immediately unreadable)
// rather than rejected by the backend.
func TTL(t time.Time) time.Duration {
	d := time.Until(t)
	if d < time.Millisecond {
		return time.Millisecond
	}
	return d
}

// EdgeSession is a browser's session at a session_auth site (the
// Backend-for-Frontend pattern of the OAuth browser-based-apps BCP): the
// tokens the gateway holds for that browser, which never reach it. The
// browser's cookie holds a random ID; the store knows the session only by
// that ID's hash.
type EdgeSession struct {
	// ID is the hash of the cookie's random ID.
	ID string `json:"id"`
	// Site names the session_auth the session belongs to.
	Site    string `json:"site"`
	Subject string `json:"sub"`
	// SID is the provider's session (the ID token's sid): its
	// back-channel logouts name it.
	SID string `json:"sid,omitempty"`
	// GrantID and ClientID are the grant the tokens are of, when the
	// provider is tokengate's own issuer: its revocation ends the session.
	GrantID  string `json:"grant_id,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// Claims are the ID token's claims, a JSON object.
	Claims       json.RawMessage `json:"claims,omitempty"`
	IDToken      string          `json:"id_token,omitempty"`
	AccessToken  string          `json:"access_token,omitempty"`
	RefreshToken string          `json:"refresh_token,omitempty"`
	// AccessIssuedAt and AccessExpiresAt are when AccessToken was got
	// and when it expires (zero: unknown).
	AccessIssuedAt  time.Time `json:"access_issued_at,omitzero"`
	AccessExpiresAt time.Time `json:"access_expires_at,omitzero"`
	CreatedAt       time.Time `json:"created_at"`
	// ExpiresAt is when the session ends unless it is used again (its
	// idle timeout), never past EndsBy, its absolute end.
	ExpiresAt time.Time `json:"expires_at"`
	EndsBy    time.Time `json:"ends_by"`
	// Version counts the record's updates: UpdateEdgeSession swaps on it,
	// so that of two instances refreshing one session's tokens at once,
	// one stores its answer and the other reads it.
	Version int64 `json:"version"`
}

// EdgeSessionStore keeps session_auth's sessions, indexed by person and
// by the provider's session so that a logout finds them.
type EdgeSessionStore interface {
	// CreateEdgeSession stores s (until its ExpiresAt) and indexes it
	// under its Site and Subject, and its SID. Past max sessions of one
	// subject on one site, the oldest are deleted, and their IDs returned.
	CreateEdgeSession(ctx context.Context, s *EdgeSession, max int) (ended []string, err error)
	// EdgeSession is the live session id; ErrNotFound when there is none.
	EdgeSession(ctx context.Context, id string) (*EdgeSession, error)
	// UpdateEdgeSession replaces the session s.ID if its Version is still
	// prev, storing s with Version prev+1 (until its ExpiresAt);
	// ErrConflict when another update came first, ErrNotFound when the
	// session is gone.
	UpdateEdgeSession(ctx context.Context, s *EdgeSession, prev int64) error
	// DeleteEdgeSession deletes the session id and its index entries;
	// ErrNotFound when there is none.
	DeleteEdgeSession(ctx context.Context, id string) error
	// EdgeSessions lists the live sessions of site whose Subject is sub
	// or, with sub "", whose SID is sid.
	EdgeSessions(ctx context.Context, site, sub, sid string) ([]*EdgeSession, error)
}
