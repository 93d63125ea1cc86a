package client

// draft-ietf-oauth-client-id-metadata-document: a client_id that is an
// https URL names the client's metadata, which the authorization server
// fetches instead of requiring a registration.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/outbound"
)

// Bounds of the metadata document cache, of the failures remembered, and
// of the fetches one address may make tokengate do (a client_id names any
// URL: without a budget, each request for a new one is a fetch).
const (
	cimdMinCache    = time.Minute
	cimdMaxCache    = 24 * time.Hour
	cimdMaxEntries  = 1000
	cimdFailureFor  = time.Minute
	cimdFetchBurst  = 10
	cimdFetchEvery  = 6 * time.Second // so 10 a minute, after the burst
	cimdMaxBudgets  = 10_000
	cimdFetchFailed = "could not fetch the application's description"
)

// DocumentError is a metadata document that could not be used. Its why is
// for the person or client: what is wrong with the document, or, when the
// document could not be fetched, only that (the fetch's own error, which
// could map the network behind the URL, goes to the log).
type DocumentError struct{ url, why string }

func (e *DocumentError) Error() string {
	return fmt.Sprintf("the client metadata document %s cannot be used: %s", e.url, e.why)
}

// Documents fetches and caches client metadata documents: one fetch
// per URL at a time, whatever the number of requests waiting for it; a
// failure remembered a minute; a budget of fetches per address.
type Documents struct {
	fetch   *outbound.Client
	scopes  []string
	log     *zap.Logger
	cache   expiringCache[*Client]
	failed  expiringCache[*DocumentError]
	flights singleflight.Group

	mu      sync.Mutex
	budgets map[string]*rate.Limiter
}

// IsMetadataDocumentURL says whether a client_id names a metadata
// document: an https URL with a path.
func IsMetadataDocumentURL(id string) bool {
	u, err := url.Parse(id)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Path != "" && u.Path != "/" && u.RawQuery == "" && u.Fragment == ""
}

// client returns the client a metadata document describes, from the cache
// while it is fresh. The fetch is the requester's (ctx carries its
// address) and counts against its budget.
func (d *Documents) client(ctx context.Context, id string) (*Client, error) {
	if c, ok := d.cache.get(id); ok {
		return c, nil
	}
	if e, ok := d.failed.get(id); ok {
		return nil, e
	}
	v, err, _ := d.flights.Do(id, func() (any, error) {
		if c, ok := d.cache.get(id); ok { // fetched while this caller waited for the lock
			return c, nil
		}
		if ip, ok := oauth.Requester(ctx); ok && !d.allow(oauth.AddressKey(ip)) {
			return nil, &DocumentError{id, "too many applications' descriptions were fetched for your address: try again in a minute"}
		}
		// The fetch is every waiter's: one leaving does not end it (the
		// client's own timeout bounds it).
		c, life, err := d.load(context.WithoutCancel(ctx), id)
		if err != nil {
			d.failed.put(id, err, time.Now().Add(cimdFailureFor))
			return nil, err
		}
		d.cache.put(id, c, time.Now().Add(life))
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Client), nil
}

// load fetches and checks a document.
func (d *Documents) load(ctx context.Context, id string) (*Client, time.Duration, *DocumentError) {
	resp, err := d.fetch.Get(ctx, id)
	if err != nil {
		d.log.Info("a client metadata document could not be fetched", zap.String("client_id", id), zap.Error(err))
		return nil, 0, &DocumentError{id, cimdFetchFailed}
	}
	var m Metadata
	var doc struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(resp.Body, &m) != nil || json.Unmarshal(resp.Body, &doc) != nil {
		return nil, 0, &DocumentError{id, "it is not a JSON object of client metadata"}
	}
	if doc.ClientID != id {
		return nil, 0, &DocumentError{id, fmt.Sprintf("its client_id %q is not its own URL", doc.ClientID)}
	}
	c, e := d.clientOf(id, &m)
	if e != nil {
		return nil, 0, e
	}
	return c, resp.CacheFor(cimdMinCache, cimdMaxCache), nil
}

// NewDocuments fetches documents through fetch (the guarded client);
// their clients may obtain scopes.
func NewDocuments(fetch *outbound.Client, scopes []string, log *zap.Logger) *Documents {
	return &Documents{fetch: fetch, scopes: scopes, log: log,
		cache: expiringCache[*Client]{max: cimdMaxEntries}, failed: expiringCache[*DocumentError]{max: cimdMaxEntries}}
}

// allow spends one fetch of addr's budget, if it has one left. The
// budgets are per instance and bounded: when full they start over, which
// only ever gives addresses more, never takes anyone's away.
func (d *Documents) allow(addr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.budgets[addr]
	if l == nil {
		if d.budgets == nil || len(d.budgets) >= cimdMaxBudgets {
			d.budgets = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Every(cimdFetchEvery), cimdFetchBurst)
		d.budgets[addr] = l
	}
	return l.Allow()
}

// clientOf validates a document's metadata: a public client of the
// authorization code grant, with exact redirect URIs.
func (d *Documents) clientOf(id string, m *Metadata) (*Client, *DocumentError) {
	// The limits and client_uri rule of registration hold for documents.
	if err := CheckMetadataLimits(m); err != nil {
		return nil, &DocumentError{id, err.Error()}
	}
	if m.ClientURI != "" {
		if err := ValidateWebsite(m.ClientURI); err != nil {
			return nil, &DocumentError{id, fmt.Sprintf("client_uri: %v", err)}
		}
	}
	if m.TokenEndpointAuthMethod != "" && m.TokenEndpointAuthMethod != "none" {
		return nil, &DocumentError{id, fmt.Sprintf("token_endpoint_auth_method %q is not supported for metadata documents: use none", m.TokenEndpointAuthMethod)}
	}
	if len(m.RedirectURIs) == 0 {
		return nil, &DocumentError{id, "it has no redirect_uris"}
	}
	for _, u := range m.RedirectURIs {
		if err := ValidateExactRedirectURI(u); err != nil {
			return nil, &DocumentError{id, fmt.Sprintf("redirect_uri %q is not allowed", u)}
		}
	}
	c := &Client{ID: id, Name: m.ClientName, Website: m.ClientURI, Public: true, RedirectURIs: m.RedirectURIs,
		GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}, Scopes: slices.Clone(d.scopes), Source: SourceMetadataDocument, Metadata: m}
	for _, g := range m.GrantTypes {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return nil, &DocumentError{id, fmt.Sprintf("grant %q is not allowed: use authorization_code and refresh_token", g)}
		}
	}
	if c.Name == "" {
		u, _ := url.Parse(id)
		c.Name = u.Host
	}
	return c, nil
}
