package authserver

// RFC 7591 and RFC 7592: dynamic client registration, and managing a
// registration with its registration access token.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/trust"
)

// RegistrationConfig turns dynamic client registration on.
type RegistrationConfig struct {
	// Open lets anyone register; otherwise registering needs
	// InitialAccessToken as a bearer token.
	Open               bool
	InitialAccessToken string
	// Scopes are the most a registered client may obtain (required).
	Scopes []string
	// ClientTTL removes registered clients unused this long (and revokes
	// their tokens); 0 keeps them.
	ClientTTL time.Duration
	// UnusedClientTTL removes a registration never issued a token this
	// long after it was made, whatever ClientTTL says. Default
	// DefaultUnusedClientTTL.
	UnusedClientTTL time.Duration
	// MaxClients is the budget of clients the store may hold (the admin
	// API's count too): past it, registrations are refused, saying so.
	// Default DefaultMaxClients.
	MaxClients int
	// ClientIDMetadataDocuments also accepts https client_ids naming the
	// client's metadata, fetched through Fetcher (default: the guarded
	// client, reaching private addresses only for AllowPrivateHosts).
	ClientIDMetadataDocuments bool
	AllowPrivateHosts         []string
	Fetcher                   *outbound.Client
}

// Defaults of RegistrationConfig.
const (
	DefaultUnusedClientTTL = 24 * time.Hour
	DefaultMaxClients      = 10_000
)

// clientUses remembers, per dynamic client, when this instance last
// recorded its use, so that a busy client costs one store write a day,
// made off the request path.
type clientUses struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// useRecordEvery is how often a client's use is written down: well within
// any sensible client_ttl.
const useRecordEvery = 24 * time.Hour

// noteClientUse records that a dynamic client was issued a token: its
// first use always (a registration never used expires early), and later
// ones when client_ttl counts them.
func (s *Server) noteClientUse(c *Client) {
	reg := s.cfg.Registration
	if reg == nil || c.Source != "dynamic" || reg.ClientTTL <= 0 && !c.LastUsedAt.IsZero() {
		return
	}
	now := time.Now().UTC()
	every := useRecordEvery
	if reg.ClientTTL > 0 {
		every = min(every, reg.ClientTTL/10)
	}
	s.uses.mu.Lock()
	if s.uses.last == nil {
		s.uses.last = map[string]time.Time{}
	}
	if now.Sub(s.uses.last[c.ID]) < every || now.Sub(c.LastUsedAt) < every {
		s.uses.mu.Unlock()
		return
	}
	s.uses.last[c.ID] = now
	s.uses.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Only the time is written: a secret rotated or a registration
		// updated meanwhile stays, and a client deleted stays deleted.
		touch := func(c *Client) error {
			if now.After(c.LastUsedAt) {
				c.LastUsedAt = now
			}
			return nil
		}
		if err := s.store.UpdateClient(ctx, c.ID, touch); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("recording a registered client's use", zap.String("client_id", c.ID), zap.Error(err))
		}
	}()
}

// ExpireRegistrations removes the dynamic clients never issued a token
// within unused_client_ttl of registering, and those unused for
// client_ttl, and revokes their tokens. Run calls it hourly.
func (s *Server) ExpireRegistrations(ctx context.Context) error {
	reg := s.cfg.Registration
	if reg == nil {
		return nil
	}
	list, err := s.store.Clients(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, c := range list {
		if c.Source != "dynamic" {
			continue
		}
		reason := ""
		switch {
		case c.LastUsedAt.IsZero() && now.Sub(c.CreatedAt) >= reg.UnusedClientTTL:
			reason = "never used within unused_client_ttl"
		case reg.ClientTTL > 0 && now.Sub(c.LastUsedAt) >= reg.ClientTTL && now.Sub(c.CreatedAt) >= reg.ClientTTL:
			reason = "unused for client_ttl"
		default:
			continue
		}
		if err := s.store.DeleteClient(ctx, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.audit(ctx, "client deleted", zap.String("client_id", c.ID), zap.String("reason", reason))
		if err := s.RevokeClient(ctx, c.ID); err != nil {
			return err
		}
		s.uses.mu.Lock()
		delete(s.uses.last, c.ID)
		s.uses.mu.Unlock()
	}
	return nil
}

// Paths of registration, below the issuer's path.
const PathRegister = "/oauth/register"

// Registration limits: per client address, and of a request.
const (
	registrationWindow = time.Hour
	registrationsPerIP = 20
	maxRegistration    = 64 << 10
)

// Limits of registered metadata (and of metadata documents): each is far
// above what a client needs (an MCP client has a few redirect URIs and a
// short name), and together they bound what one registration costs the
// store: a few KB, not the 64 KB a request may carry.
const (
	maxRedirectURIs   = 20
	maxURILength      = 2000
	maxContacts       = 10
	maxContactLength  = 320 // RFC 5321's longest address
	maxSoftwareLength = 200
	maxScopeLength    = 2000
	maxMetadataBytes  = 16 << 10 // the metadata as registered, jwks included
)

// checkMetadataLimits refuses metadata past the limits, naming the member
// and the limit.
func checkMetadataLimits(m *ClientMetadata) error {
	if n := utf8.RuneCountInString(m.ClientName); n > MaxNameLength {
		return fmt.Errorf("client_name has %d characters: at most %d", n, MaxNameLength)
	}
	if len(m.RedirectURIs) > maxRedirectURIs {
		return fmt.Errorf("redirect_uris has %d URIs: at most %d", len(m.RedirectURIs), maxRedirectURIs)
	}
	if len(m.Contacts) > maxContacts {
		return fmt.Errorf("contacts has %d entries: at most %d", len(m.Contacts), maxContacts)
	}
	for _, f := range []struct {
		name   string
		values []string
		max    int
	}{
		{"redirect_uris", m.RedirectURIs, maxURILength},
		{"client_uri", []string{m.ClientURI}, maxURILength},
		{"jwks_uri", []string{m.JWKSURI}, maxURILength},
		{"contacts", m.Contacts, maxContactLength},
		{"software_id", []string{m.SoftwareID}, maxSoftwareLength},
		{"software_version", []string{m.SoftwareVersion}, maxSoftwareLength},
		{"scope", []string{m.Scope}, maxScopeLength},
		{"grant_types", m.GrantTypes, maxSoftwareLength},
		{"response_types", m.ResponseTypes, maxSoftwareLength},
		{"token_endpoint_auth_method", []string{m.TokenEndpointAuthMethod}, maxSoftwareLength},
		{"application_type", []string{m.ApplicationType}, maxSoftwareLength},
	} {
		for _, v := range f.values {
			if len(v) > f.max {
				return fmt.Errorf("%s has a value of %d bytes: at most %d", f.name, len(v), f.max)
			}
		}
	}
	if len(m.GrantTypes) > len(GrantNames) || len(m.ResponseTypes) > 1 {
		return errors.New("grant_types or response_types holds more values than there are")
	}
	if b, _ := json.Marshal(m); len(b) > maxMetadataBytes {
		return fmt.Errorf("the metadata takes %d bytes: at most %d (jwks included; give a jwks_uri for a large key set)", len(b), maxMetadataBytes)
	}
	return nil
}

// registrationAuthMethods are the token endpoint authentication methods
// a registered client may use.
var registrationAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}

// ClientMetadata is RFC 7591 §2's client metadata, as registered and as
// answered (unknown members are ignored).
type ClientMetadata = store.ClientMetadata

// RegistrationResponse is RFC 7591 §3.2.1's answer (and RFC 7592's).
type RegistrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	ClientMetadata
}

func errRegistration(code, format string, args ...any) *oauth.Error {
	return oauth.NewError(code, http.StatusBadRequest, format, args...)
}

// readRegistration reads a registration request's metadata and the
// client it describes (POST and RFC 7592's PUT).
func (s *Server) readRegistration(w http.ResponseWriter, r *http.Request) (*Client, *oauth.Error) {
	m, e := readClientMetadata(w, r)
	if e != nil {
		return nil, e
	}
	return s.clientFromMetadata(m)
}

// clientFromMetadata validates RFC 7591 metadata (filling in its defaults)
// and makes the client it describes.
func (s *Server) clientFromMetadata(m *ClientMetadata) (*Client, *oauth.Error) {
	if err := checkMetadataLimits(m); err != nil {
		return nil, errRegistration("invalid_client_metadata", "%v", err)
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{GrantAuthorizationCode}
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if !slices.Contains(registrationAuthMethods, m.TokenEndpointAuthMethod) {
		return nil, errRegistration("invalid_client_metadata", "token_endpoint_auth_method %q is not supported: use %s", m.TokenEndpointAuthMethod, strings.Join(registrationAuthMethods, ", "))
	}
	public := m.TokenEndpointAuthMethod == "none"
	c := &Client{ID: newClientID(), Name: strings.TrimSpace(m.ClientName), Website: m.ClientURI, Public: public,
		RedirectURIs: m.RedirectURIs, Source: "dynamic", CreatedAt: time.Now().UTC(), RequireDPoP: m.DPoPBoundAccessTokens}
	if m.TokenEndpointAuthMethod == "private_key_jwt" {
		switch {
		case (len(m.JWKS) > 0) == (m.JWKSURI != ""):
			return nil, errRegistration("invalid_client_metadata", "private_key_jwt needs the client's keys: give jwks or jwks_uri (one of them)")
		case m.JWKSURI != "":
			if err := outbound.CheckURL(m.JWKSURI, false); err != nil {
				return nil, errRegistration("invalid_client_metadata", "jwks_uri: %v", err)
			}
		case len(m.JWKS) > 0:
			ks, err := trust.ReadKeySet(m.JWKS)
			if err != nil {
				return nil, errRegistration("invalid_client_metadata", "jwks: %v", err)
			}
			if ks.Set.Len() == 0 {
				return nil, errRegistration("invalid_client_metadata", "jwks holds no signing key tokengate can use: %v", errors.Join(ks.Dropped...))
			}
		}
		c.JWKS, c.JWKSURI = m.JWKS, m.JWKSURI
	} else if len(m.JWKS) > 0 || m.JWKSURI != "" {
		return nil, errRegistration("invalid_client_metadata", "jwks and jwks_uri go with token_endpoint_auth_method private_key_jwt")
	}
	for _, g := range m.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken:
		case GrantClientCredentials: // for a confidential client only: ValidateClient's rule
		default:
			return nil, errRegistration("invalid_client_metadata", "grant_types may hold authorization_code, refresh_token and client_credentials, not %q", g)
		}
		if !slices.Contains(c.GrantTypes, g) {
			c.GrantTypes = append(c.GrantTypes, g)
		}
	}
	// OpenID Connect Registration §2's values, which MCP clients send; a
	// code-flow client of either kind may use every redirect URI form
	// allowed below, so the kind is recorded, not enforced further.
	if m.ApplicationType != "" && m.ApplicationType != "web" && m.ApplicationType != "native" {
		return nil, errRegistration("invalid_client_metadata", "application_type must be web or native, not %q", m.ApplicationType)
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return nil, errRegistration("invalid_client_metadata", "response_types may only hold code, not %q", rt)
		}
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(m.RedirectURIs) == 0 {
		return nil, errRegistration("invalid_redirect_uri", "redirect_uris is required for the authorization_code grant")
	}
	for _, u := range m.RedirectURIs {
		if err := validateExactRedirectURI(u); err != nil {
			return nil, errRegistration("invalid_redirect_uri", "redirect_uri %q: %v", u, err)
		}
	}
	if m.ClientURI != "" {
		if err := validateWebsite(m.ClientURI); err != nil {
			return nil, errRegistration("invalid_client_metadata", "client_uri: %v", err)
		}
	}
	// A registered client may obtain every scope of the registration's (the
	// person consents to each request). MCP clients register with the scope
	// of the first challenge they meet and step up later (403
	// insufficient_scope) without registering again, so the scope asked for
	// is checked, then replaced by that list, as the answer says (RFC 7591
	// §3.2.1 lets the server replace a value).
	allowed := s.cfg.Registration.Scopes
	for _, sc := range strings.Fields(m.Scope) {
		if !slices.Contains(allowed, sc) {
			return nil, errRegistration("invalid_client_metadata", "scope %q is not one registered clients may have: ask for some of %q", sc, strings.Join(allowed, " "))
		}
	}
	c.Scopes = slices.Clone(allowed)
	m.Scope = strings.Join(c.Scopes, " ")
	if c.Name == "" {
		c.Name = c.ID
		if len(c.RedirectURIs) > 0 {
			if u, err := url.Parse(c.RedirectURIs[0]); err == nil && u.Host != "" {
				c.Name = u.Host
			}
		}
	}
	c.Metadata = m
	// The secret is drawn once the registration is accepted.
	probe := *c
	if !c.Public && !usesAssertion(c) {
		probe.SecretHash = sha256Prefix
	}
	if err := ValidateClient(&probe); err != nil {
		return nil, errRegistration("invalid_client_metadata", "%v", err)
	}
	return c, nil
}

// handleRegister is RFC 7591's registration endpoint, and RFC 7592's
// configuration endpoint below it.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if id, ok := strings.CutPrefix(r.URL.Path, s.issuer.Path+PathRegister+"/"); ok {
		s.handleRegistration(w, r, id)
		return
	}
	if r.Method != http.MethodPost {
		oauth.WriteError(w, oauth.MethodNotAllowed(w, http.MethodPost))
		return
	}
	if !s.cfg.Registration.Open {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Registration.InitialAccessToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="registration", error="invalid_token"`)
			oauth.WriteError(w, &oauth.Error{Code: "invalid_token", Description: "registering needs the initial access token as Authorization: Bearer", Status: http.StatusUnauthorized})
			return
		}
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	limit := failureLimits{window: registrationWindow, counters: []limitedCounter{{"register:" + s.addressKey(r), registrationsPerIP}}}
	if until, limited, err := limit.locked(ctx, s.store); err != nil {
		oauth.WriteError(w, s.storeError("reading a rate limit", err))
		return
	} else if limited {
		w.Header().Set("Retry-After", fmt.Sprint(int(time.Until(until).Seconds())+1))
		oauth.WriteError(w, &oauth.Error{Code: "invalid_request", Status: http.StatusTooManyRequests,
			Description: fmt.Sprintf("too many registrations from this address: retry after %s UTC", until.UTC().Format("15:04:05"))})
		return
	}
	c, e := s.readRegistration(w, r)
	if e != nil {
		oauth.WriteError(w, e)
		return
	}
	// The budget bounds the store whatever the addresses registering: a
	// network holds many of them.
	if n, err := s.store.CountClients(ctx); err != nil {
		oauth.WriteError(w, s.storeError("counting registered clients", err))
		return
	} else if max := s.cfg.Registration.MaxClients; n >= max {
		s.log.Warn("a registration was refused: the store holds the most registered clients it may (registration's max_clients); unused ones expire, or raise the budget",
			zap.Int("max_clients", max))
		oauth.WriteError(w, &oauth.Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable,
			Description: fmt.Sprintf("this server takes no more registrations: it holds the %d registered clients it may; ask its operator to raise registration's max_clients", max)})
		return
	}
	var secret string
	if !c.Public && !usesAssertion(c) {
		secret, c.SecretHash = newSecret()
	}
	regToken := oauth.RandomToken(32)
	c.RegistrationTokenHash = HashSecretSHA256(regToken)
	if err := s.store.PutClient(ctx, c); err != nil {
		oauth.WriteError(w, s.storeError("registering a client", err))
		return
	}
	// Every registration counts: the limit bounds how many one address
	// can make, not how many it gets wrong.
	s.failed(ctx, limit)
	s.audit(ctx, "client registered", zap.String("client_id", c.ID), zap.String("name", c.Name), zap.String("source", "dynamic"),
		zap.Strings("grant_types", c.GrantTypes), zap.String("scope", strings.Join(c.Scopes, " ")))
	resp := s.registrationResponse(c)
	resp.ClientSecret, resp.RegistrationAccessToken = secret, regToken
	oauth.WriteJSON(w, http.StatusCreated, resp)
}

func (s *Server) registrationResponse(c *Client) *RegistrationResponse {
	resp := &RegistrationResponse{ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(),
		RegistrationClientURI: s.endpointURL(PathRegister + "/" + c.ID)}
	if c.Metadata != nil {
		resp.ClientMetadata = *c.Metadata
	}
	if c.SecretHash != "" {
		zero := int64(0)
		resp.ClientSecretExpiresAt = &zero
	}
	return resp
}

// readClientMetadata reads a registration's JSON body, at most
// maxRegistration bytes.
func readClientMetadata(w http.ResponseWriter, r *http.Request) (*ClientMetadata, *oauth.Error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, errRegistration("invalid_client_metadata", "send the client metadata as application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistration))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &oauth.Error{Code: "invalid_client_metadata", Description: "the registration is larger than 64 KB", Status: http.StatusRequestEntityTooLarge}
	}
	m := new(ClientMetadata)
	if err != nil || json.Unmarshal(body, m) != nil {
		return nil, errRegistration("invalid_client_metadata", "the body is not a JSON object of client metadata (RFC 7591 §2)")
	}
	return m, nil
}

// handleRegistration is RFC 7592: read, replace or delete a registration
// with its registration access token.
func (s *Server) handleRegistration(w http.ResponseWriter, r *http.Request, id string) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	c, e := s.registeredClient(ctx, r, id)
	if e != nil {
		if e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="registration", error="invalid_token"`)
		}
		oauth.WriteError(w, e)
		return
	}
	switch r.Method {
	case http.MethodGet:
		oauth.WriteJSON(w, http.StatusOK, s.registrationResponse(c))
	case http.MethodPut:
		next, e := s.readRegistration(w, r)
		if e != nil {
			oauth.WriteError(w, e)
			return
		}
		var updated *Client
		var secret string
		err := s.store.UpdateClient(ctx, c.ID, func(cur *Client) error {
			if next.Public != cur.Public {
				return errRegistration("invalid_client_metadata", "token_endpoint_auth_method cannot change between none and a secret: register a new client")
			}
			// next was checked as a new registration is (readRegistration),
			// with the credentials its method implies; these follow it. What
			// the registration's owner does not describe stays: its age and
			// last use (client_ttl's clock), and its secret while it
			// authenticates with one. A switch to a secret method draws a
			// secret (the answer carries it); a switch away deletes it.
			replaced := *next
			replaced.ID, replaced.RegistrationTokenHash = cur.ID, cur.RegistrationTokenHash
			replaced.CreatedAt, replaced.LastUsedAt = cur.CreatedAt, cur.LastUsedAt
			secret, replaced.SecretHash = "", ""
			if !replaced.Public && !usesAssertion(&replaced) {
				if replaced.SecretHash = cur.SecretHash; replaced.SecretHash == "" {
					secret, replaced.SecretHash = newSecret()
				}
			}
			*cur, updated = replaced, &replaced
			return nil
		})
		var oe *oauth.Error
		switch {
		case errors.As(err, &oe):
			oauth.WriteError(w, oe)
			return
		case errors.Is(err, store.ErrNotFound):
			oauth.WriteError(w, &oauth.Error{Code: "invalid_token", Description: "this registration was deleted", Status: http.StatusUnauthorized})
			return
		case err != nil:
			oauth.WriteError(w, s.storeError("updating a registration", err))
			return
		}
		s.audit(ctx, "client registration updated", zap.String("client_id", c.ID))
		resp := s.registrationResponse(updated)
		resp.ClientSecret = secret
		oauth.WriteJSON(w, http.StatusOK, resp)
	case http.MethodDelete:
		if err := s.store.DeleteClient(ctx, c.ID); err != nil {
			oauth.WriteError(w, s.storeError("deleting a registration", err))
			return
		}
		s.audit(ctx, "client deleted", zap.String("client_id", c.ID), zap.String("by", "registration"))
		if err := s.RevokeClient(ctx, c.ID); err != nil {
			oauth.WriteError(w, s.storeError("revoking a deleted client's tokens", err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		oauth.WriteError(w, oauth.MethodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete))
	}
}

// registeredClient is the dynamic client id, if the request carries its
// registration access token; the same 401 whether the client exists or
// not, so the endpoint reveals nothing.
func (s *Server) registeredClient(ctx context.Context, r *http.Request, id string) (*Client, *oauth.Error) {
	denied := &oauth.Error{Code: "invalid_token", Description: "send the registration access token of this client as Authorization: Bearer", Status: http.StatusUnauthorized}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, denied
	}
	c, inConfig, err := s.clients.lookup(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && (inConfig || c.RegistrationTokenHash == ""):
		return nil, denied
	case err != nil:
		return nil, s.storeError("looking up a client", err)
	}
	if !verifySecret(c.RegistrationTokenHash, tok) {
		return nil, denied
	}
	return c, nil
}
