package client

// RFC 6749 §2: where a client is found (the configuration's, a metadata
// document's, the store's), and the key sets of those that authenticate
// with private_key_jwt (RFC 7523).

import (
	"context"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/trust"
)

// Registry finds clients. It reads the store's clients only
// (store.ClientStore) and reaches URLs through two clients: fetch for
// URLs clients supply, trusted for those the operator wrote.
type Registry struct {
	// config are the configuration's clients, by ID: they come first.
	config map[string]*Client
	// configList is config in the configuration's order.
	configList []*Client
	store      store.ClientStore
	// documents fetches client metadata documents; nil when off.
	documents      *Documents
	fetch, trusted *outbound.Client
	// jwks caches fetched client key sets.
	jwks expiringCache[jwk.Set]
	log  *zap.Logger
}

// NewRegistry finds config's clients first, then documents' (nil when
// metadata documents are off), then st's. fetch reaches the URLs clients
// supply (jwks_uri), trusted those the operator wrote.
func NewRegistry(config []*Client, st store.ClientStore, documents *Documents, fetch, trusted *outbound.Client, log *zap.Logger) *Registry {
	r := &Registry{config: map[string]*Client{}, store: st, documents: documents, fetch: fetch, trusted: trusted, log: log,
		jwks: expiringCache[jwk.Set]{max: jwksCacheEntries}}
	for _, c := range config {
		r.config[c.ID] = c
	}
	r.configList = config
	return r
}

// Lookup finds a client: the configuration's first (inConfig), then a
// metadata document's (when on), then the store's.
func (r *Registry) Lookup(ctx context.Context, id string) (c *Client, inConfig bool, err error) {
	if c, ok := r.config[id]; ok {
		return c, true, nil
	}
	if r.documents != nil && IsMetadataDocumentURL(id) {
		c, err = r.documents.client(ctx, id)
		return c, false, err
	}
	c, err = r.store.Client(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return c, false, nil
}

// ConfigClients are the configuration's clients, in its order.
func (r *Registry) ConfigClients() []*Client { return r.configList }

// AcceptsDocuments says whether client_ids may name metadata documents.
func (r *Registry) AcceptsDocuments() bool { return r.documents != nil }

// Configured says whether id is a client of the configuration.
func (r *Registry) Configured(id string) bool {
	_, ok := r.config[id]
	return ok
}

// Keys is the client's key set: registered with it, or fetched from its
// jwks_uri (and kept a few minutes) through the guarded client, or the
// trusted one when the operator wrote the URL in the configuration.
func (r *Registry) Keys(ctx context.Context, c *Client, inConfig bool) (jwk.Set, *oauth.Error) {
	if len(c.JWKS) > 0 {
		ks, err := trust.ReadKeySet(c.JWKS)
		if err != nil || ks.Set.Len() == 0 {
			return nil, oauth.ErrInvalidClient("client %q has no key set with a usable signing key", c.ID)
		}
		return ks.Set, nil
	}
	// Cached apart, so that a client naming the operator's URL does not
	// get it fetched past the guard.
	fetch, key := r.fetch, c.JWKSURI
	if inConfig {
		fetch, key = r.trusted, "config "+c.JWKSURI
	}
	if set, ok := r.jwks.get(key); ok {
		return set, nil
	}
	resp, err := fetch.Get(ctx, c.JWKSURI)
	if err != nil {
		return nil, oauth.ErrInvalidClient("the client's jwks_uri cannot be used: %v", err)
	}
	// Read key by key: a key of the set that cannot be used is dropped,
	// not the set.
	ks, err := trust.ReadKeySet(resp.Body)
	if err != nil || ks.Set.Len() == 0 {
		return nil, oauth.ErrInvalidClient("the client's jwks_uri does not hold a JWK Set with a usable signing key")
	}
	for _, d := range ks.Dropped {
		r.log.Warn("a key of a client's JWK Set cannot be used and is left out", zap.String("client_id", c.ID), zap.String("jwks_uri", c.JWKSURI), zap.Error(d))
	}
	r.jwks.put(key, ks.Set, time.Now().Add(jwksCacheFor))
	return ks.Set, nil
}
