package trust

// Opaque tokens of another issuer, checked at its RFC 7662 introspection
// endpoint. Answers are cached under an HMAC of the token (a key of the
// process's own, so the cache's keys say nothing of the tokens), never
// past the token's exp nor the configured TTL; the route's audience and
// scopes are checked on every use of a cached answer, not only when it
// was fetched (Oathkeeper's lesson). Requests with the same token share
// one introspection.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"net/url"
	"sync"
	"time"

	"github.com/tokengate/tokengate/introspect"
)

// introspectionEntries bounds the cache: past it, expired answers go, then
// arbitrary ones.
const introspectionEntries = 10_000

type introspector struct {
	issuer *Issuer
	ttl    time.Duration
	// macs are HMAC-SHA256 states under the process's key, reused: a
	// cache hit then costs the hash of the token, not a new HMAC's setup.
	macs sync.Pool

	mu      sync.RWMutex
	answers map[[32]byte]*answer
}

// answer is one introspection's outcome, or the call under way (until is
// zero until it is done; both are written under the introspector's mu).
type answer struct {
	done    chan struct{}
	claims  *introspect.Claims // nil: refused
	refusal error              // why, when refused (inactive, not for this gateway)
	outage  error              // the issuer could not answer: not cached
	until   time.Time
}

func newIntrospector(i *Issuer) *introspector {
	in := &introspector{issuer: i, ttl: i.cfg.Introspection.CacheTTL, answers: map[[32]byte]*answer{}}
	if in.ttl <= 0 {
		in.ttl = DefaultIntrospectionTTL
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	in.macs.New = func() any { return hmac.New(sha256.New, key) }
	return in
}

var errInactive = &introspect.TokenError{Reason: introspect.ReasonRevoked, Description: "the issuer says the token is not active"}

// check answers for token from the cache, or from one introspection that
// concurrent requests for it share.
func (in *introspector) check(ctx context.Context, token string) (*introspect.Claims, error) {
	mac := in.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(token))
	var k [32]byte
	mac.Sum(k[:0])
	in.macs.Put(mac)

	now := time.Now()
	// A hit reads under the read lock: concurrent requests do not queue.
	in.mu.RLock()
	if a := in.answers[k]; a != nil && !a.until.IsZero() && now.Before(a.until) {
		claims, refusal := a.claims, a.refusal
		in.mu.RUnlock()
		return in.use(claims, refusal)
	}
	in.mu.RUnlock()
	in.mu.Lock()
	a := in.answers[k]
	if a != nil && a.until.IsZero() {
		// Under way: wait for it.
		in.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, &introspect.TokenError{Reason: introspect.ReasonUnavailable, Description: "the issuer's introspection did not answer in time"}
		}
	} else if a == nil || !now.Before(a.until) {
		a = &answer{done: make(chan struct{})}
		in.evict(now)
		in.answers[k] = a
		in.mu.Unlock()
		claims, refusal, outage, until := in.introspect(ctx, token, now)
		in.mu.Lock()
		a.claims, a.refusal, a.outage, a.until = claims, refusal, outage, until
		if outage != nil {
			delete(in.answers, k) // an outage is not remembered
		}
		in.mu.Unlock()
		close(a.done)
	} else {
		in.mu.Unlock()
	}
	in.mu.RLock()
	claims, refusal, outage := a.claims, a.refusal, a.outage
	in.mu.RUnlock()
	if outage != nil {
		return nil, outage
	}
	return in.use(claims, refusal)
}

// use is a cached answer's verdict: expiry and audience checked again, as
// the answer was cached but the token's life and the route's demands were
// not.
func (in *introspector) use(claims *introspect.Claims, refusal error) (*introspect.Claims, error) {
	if claims == nil {
		return nil, refusal
	}
	if err := in.issuer.validator.Check(claims, in.issuer.cfg.Audience...); err != nil {
		return nil, err
	}
	return claims, nil
}

// evict keeps the cache within bounds; in.mu is held.
func (in *introspector) evict(now time.Time) {
	if len(in.answers) < introspectionEntries {
		return
	}
	drop := introspectionEntries / 10
	for k, a := range in.answers {
		if a.until.IsZero() {
			continue
		}
		if !now.Before(a.until) || drop > 0 {
			delete(in.answers, k)
			drop--
		}
	}
}

// introspect asks the issuer about token. It returns the claims, or the
// refusal (inactive, not for this gateway), with until when that answer
// may be used again; or the outage that kept the issuer from answering.
func (in *introspector) introspect(ctx context.Context, token string, now time.Time) (claims *introspect.Claims, refusal, outage error, until time.Time) {
	i := in.issuer
	cfg := i.cfg.Introspection
	unavailable := func(err error) (*introspect.Claims, error, error, time.Time) {
		return nil, nil, &introspect.TokenError{Reason: introspect.ReasonUnavailable, Description: i.cfg.Issuer + " cannot check the token right now", Err: err}, time.Time{}
	}
	endpoint := cfg.URL
	if endpoint == "" {
		d, err := i.discover(ctx)
		if err != nil {
			return unavailable(err)
		}
		if endpoint = d.Introspection; endpoint == "" {
			return unavailable(fmt.Errorf("its discovery document names no introspection_endpoint: give its URL in the trust block"))
		}
	}
	resp, err := i.fetch.PostForm(ctx, endpoint, url.Values{"token": {token}}, cfg.ClientID, cfg.ClientSecret)
	if err != nil {
		return unavailable(err)
	}
	var status struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(resp.Body, &status); err != nil {
		return unavailable(fmt.Errorf("its introspection answer is not JSON"))
	}
	until = now.Add(in.ttl)
	if !status.Active {
		return nil, errInactive, nil, until
	}
	c, err := introspect.NewClaims(resp.Body)
	if err != nil {
		return unavailable(fmt.Errorf("its introspection answer cannot be read: %v", err))
	}
	if c.Issuer == "" {
		c.Issuer = i.cfg.Issuer
	}
	if c.Subject == "" {
		c.Subject = c.ClientID // a client's own token, as tokengate's are
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = until.Unix() // RFC 7662 makes exp optional; the cache bounds it
	}
	if exp := time.Unix(c.ExpiresAt, 0); exp.Before(until) {
		until = exp
	}
	if err := i.validator.Admit(c, i.cfg.Audience...); err != nil {
		return nil, err, nil, now.Add(in.ttl)
	}
	return c, nil, nil, until
}
