package authserver

// draft-ietf-oauth-client-id-metadata-document: a client_id that is an
// https URL names the client's metadata, which the authorization server
// fetches instead of requiring a registration.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/outbound"
)

// Bounds of the metadata document cache.
const (
	cimdMinCache   = time.Minute
	cimdMaxCache   = 24 * time.Hour
	cimdMaxEntries = 1000
)

// cimdError is a metadata document that could not be used: the person or
// client is told why (it is the client's document, not a secret).
type cimdError struct{ url, why string }

func (e *cimdError) Error() string {
	return fmt.Sprintf("the client metadata document %s cannot be used: %s", e.url, e.why)
}

// clientDocuments fetches and caches client metadata documents.
type clientDocuments struct {
	fetch  *outbound.Client
	scopes []string
	cache  expiringCache[*Client]
}

// isClientIDURL says whether a client_id names a metadata document: an
// https URL with a path.
func isClientIDURL(id string) bool {
	u, err := url.Parse(id)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Path != "" && u.Path != "/" && u.RawQuery == "" && u.Fragment == ""
}

// client returns the client a metadata document describes, from the cache
// while it is fresh.
func (d *clientDocuments) client(ctx context.Context, id string) (*Client, error) {
	if c, ok := d.cache.get(id); ok {
		return c, nil
	}
	resp, err := d.fetch.Get(ctx, id)
	if err != nil {
		return nil, &cimdError{id, err.Error()}
	}
	var m ClientMetadata
	var doc struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(resp.Body, &m) != nil || json.Unmarshal(resp.Body, &doc) != nil {
		return nil, &cimdError{id, "it is not a JSON object of client metadata"}
	}
	if doc.ClientID != id {
		return nil, &cimdError{id, fmt.Sprintf("its client_id %q is not its own URL", doc.ClientID)}
	}
	c, e := d.clientOf(id, &m)
	if e != nil {
		return nil, e
	}
	d.cache.put(id, c, time.Now().Add(resp.CacheFor(cimdMinCache, cimdMaxCache)))
	return c, nil
}

// clientOf validates a document's metadata: a public client of the
// authorization code grant, with exact redirect URIs.
func (d *clientDocuments) clientOf(id string, m *ClientMetadata) (*Client, error) {
	if m.TokenEndpointAuthMethod != "" && m.TokenEndpointAuthMethod != "none" {
		return nil, &cimdError{id, fmt.Sprintf("token_endpoint_auth_method %q is not supported for metadata documents: use none", m.TokenEndpointAuthMethod)}
	}
	if len(m.RedirectURIs) == 0 {
		return nil, &cimdError{id, "it has no redirect_uris"}
	}
	for _, u := range m.RedirectURIs {
		if err := validateRedirectURI(u); err != nil || strings.Contains(u, "*") {
			return nil, &cimdError{id, fmt.Sprintf("redirect_uri %q is not allowed", u)}
		}
	}
	c := &Client{ID: id, Name: m.ClientName, Website: m.ClientURI, Public: true, RedirectURIs: m.RedirectURIs,
		GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}, Scopes: slices.Clone(d.scopes), Source: "metadata document", Metadata: m}
	for _, g := range m.GrantTypes {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return nil, &cimdError{id, fmt.Sprintf("grant %q is not allowed: use authorization_code and refresh_token", g)}
		}
	}
	if c.Name == "" {
		u, _ := url.Parse(id)
		c.Name = u.Host
	}
	return c, nil
}
