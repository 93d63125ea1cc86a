package client

// The client as administrators see and register it (tokengate's admin
// API, console and CLI; no RFC).

import (
	"slices"
	"strings"
	"time"

	"github.com/tokengate/tokengate/authserver/oauth"
)

// Sources of a client as administrators see it (Info.Source), besides
// SourceDynamic.
const (
	// SourceConfig is a client of the configuration: read-only.
	SourceConfig = "config"
	// SourceRegistered is a client an administrator registered.
	SourceRegistered = "registered"
)

// Info is a client as administrators see it, and what they send to
// register one (ID, CreatedAt, Source and Secret are the server's).
type Info struct {
	ID             string   `json:"client_id,omitempty"`
	Name           string   `json:"name"`
	Website        string   `json:"website,omitempty"`
	RedirectURIs   []string `json:"redirect_uris,omitempty"`
	GrantTypes     []string `json:"grant_types"`
	Scope          string   `json:"scope"`
	Audience       []string `json:"audience,omitempty"`
	Public         bool     `json:"public"`
	SkipConsent    bool     `json:"skip_consent,omitempty"`
	ResourceServer bool     `json:"resource_server,omitempty"`
	RequireDPoP    bool     `json:"require_dpop,omitempty"`
	// OpenID Connect (see Client).
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required,omitempty"`
	IDTokenAlg                       string   `json:"id_token_alg,omitempty"`
	// Delegation (see Client): the resources it may exchange tokens
	// into, whose tokens it may exchange, and its workload identity.
	Exchange     []ExchangeTarget `json:"exchange,omitempty"`
	ExchangeFrom []string         `json:"exchange_from,omitempty"`
	Federated    *Federation      `json:"federated,omitempty"`
	CreatedAt    time.Time        `json:"created_at,omitzero"`
	// Source is "config" (read-only), "registered" (by an administrator)
	// or "dynamic" (the client registered itself, RFC 7591).
	Source string `json:"source,omitempty"`
	// Secret is set once: in the answer that creates or rotates it.
	Secret string `json:"client_secret,omitempty"`
}

// InfoOf is c as administrators see it: source is where it was found
// ("config" or "registered"; a self-registered client says so itself).
func InfoOf(c *Client, source string) *Info {
	if source == SourceRegistered && c.Source != "" {
		source = c.Source
	}
	ci := &Info{ID: c.ID, Name: c.Name, Website: c.Website, RedirectURIs: c.RedirectURIs, Scope: strings.Join(c.Scopes, " "),
		Audience: c.Audience, Public: c.Public, SkipConsent: c.SkipConsent, ResourceServer: c.ResourceServer, RequireDPoP: c.RequireDPoP, CreatedAt: c.CreatedAt, Source: source,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, BackchannelLogoutURI: c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired, IDTokenAlg: c.IDTokenAlg,
		Exchange: c.Exchange, ExchangeFrom: c.ExchangeFrom, Federated: c.Federated}
	for _, g := range c.GrantTypes {
		ci.GrantTypes = append(ci.GrantTypes, ShortGrantName(g))
	}
	return ci
}

// NewClient is the client an administrator's registration describes, with
// id and, for a confidential client, a new secret (returned once, stored
// hashed). Problems are invalid_request naming the field.
func (i *Info) NewClient(id string) (c *Client, secret string, e *oauth.Error) {
	switch {
	case strings.TrimSpace(i.Name) == "":
		return nil, "", oauth.ErrInvalidRequest("name is required")
	case i.ID != "" || i.Source != "" || i.Secret != "" || !i.CreatedAt.IsZero():
		return nil, "", oauth.ErrInvalidRequest("client_id, source, client_secret and created_at are the server's to set: leave them out")
	}
	c = &Client{ID: id, Name: i.Name, Website: i.Website, RedirectURIs: i.RedirectURIs,
		Scopes: strings.Fields(i.Scope), Audience: i.Audience, Public: i.Public, SkipConsent: i.SkipConsent,
		ResourceServer: i.ResourceServer, RequireDPoP: i.RequireDPoP, CreatedAt: time.Now().UTC(),
		PostLogoutRedirectURIs: i.PostLogoutRedirectURIs, BackchannelLogoutURI: i.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: i.BackchannelLogoutSessionRequired, IDTokenAlg: i.IDTokenAlg,
		Exchange: i.Exchange, ExchangeFrom: i.ExchangeFrom, Federated: i.Federated}
	if i.Website != "" {
		if err := ValidateWebsite(i.Website); err != nil {
			return nil, "", oauth.ErrInvalidRequest("website: %v", err)
		}
	}
	for _, g := range i.GrantTypes {
		gt, err := GrantType(g)
		if err != nil {
			return nil, "", oauth.ErrInvalidRequest("%v", err)
		}
		if !slices.Contains(c.GrantTypes, gt) {
			c.GrantTypes = append(c.GrantTypes, gt)
		}
	}
	if !c.Public && c.Federated == nil {
		secret, c.SecretHash = NewSecret()
	}
	if err := Validate(c); err != nil {
		return nil, "", oauth.ErrInvalidRequest("%v", strings.TrimPrefix(err.Error(), "client "+c.ID+": "))
	}
	return c, secret, nil
}
