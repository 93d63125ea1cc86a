package authserver

// RFC 7591 and RFC 7592: dynamic client registration, and managing a
// registration with its registration access token.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/outbound"
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

// Validate checks who may register and what they may obtain.
func (r *RegistrationConfig) Validate() error {
	switch {
	case r.Open && r.InitialAccessToken != "":
		return errors.New("registration: give open or initial_access_token, not both")
	case !r.Open && r.InitialAccessToken == "":
		return errors.New("registration: say who may register: open, or initial_access_token <token>")
	case len(r.Scopes) == 0:
		return errors.New("registration: scope is required: the most a registered client may obtain")
	}
	return nil
}

// Defaults of RegistrationConfig.
const (
	DefaultUnusedClientTTL = 24 * time.Hour
	DefaultMaxClients      = 10_000
)

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
		if c.Source != client.SourceDynamic {
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
		if err := s.tokens.RevokeClient(ctx, c.ID); err != nil {
			return err
		}
		s.uses.Forget(c.ID)
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

// readRegistration reads a registration request's metadata and the
// client it describes (POST and RFC 7592's PUT).
func (s *Server) readRegistration(w http.ResponseWriter, r *http.Request) (*client.Client, *oauth.Error) {
	m, e := client.ReadMetadata(w, r)
	if e != nil {
		return nil, e
	}
	return client.FromMetadata(m, s.cfg.Registration.Scopes, s.rt.keys.Algs())
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
	ctx, cancel := oauth.RequestContext(r)
	defer cancel()
	limit := oauth.Limits{Window: registrationWindow, Counters: []oauth.Counted{{Key: "register:" + s.addressKey(r), Limit: registrationsPerIP}}}
	if until, limited, err := limit.Locked(ctx, s.store); err != nil {
		oauth.WriteError(w, s.obs.failures.Store("reading a rate limit", err))
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
		oauth.WriteError(w, s.obs.failures.Store("counting registered clients", err))
		return
	} else if max := s.cfg.Registration.MaxClients; n >= max {
		s.obs.log.Warn("a registration was refused: the store holds the most registered clients it may (registration's max_clients); unused ones expire, or raise the budget",
			zap.Int("max_clients", max))
		oauth.WriteError(w, &oauth.Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable,
			Description: fmt.Sprintf("this server takes no more registrations: it holds the %d registered clients it may; ask its operator to raise registration's max_clients", max)})
		return
	}
	var secret string
	if !c.Public && !client.UsesAssertion(c) {
		secret, c.SecretHash = client.NewSecret()
	}
	regToken := oauth.RandomToken(32)
	c.RegistrationTokenHash = client.HashSecretSHA256(regToken)
	// Every attempt that gets this far counts: the limit bounds how many
	// registrations one address makes, not how many it gets wrong. The
	// count is written beside the client, not after it, so that a store
	// that commits concurrent writes together (the file store) commits
	// both at once.
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		limit.Fail(ctx, s.store, s.obs.failures)
	}()
	err := s.store.PutClient(ctx, c)
	<-counted
	if err != nil {
		oauth.WriteError(w, s.obs.failures.Store("registering a client", err))
		return
	}
	s.audit(ctx, "client registered", zap.String("client_id", c.ID), zap.String("name", c.Name), zap.String("source", client.SourceDynamic),
		zap.Strings("grant_types", c.GrantTypes), zap.String("scope", strings.Join(c.Scopes, " ")))
	resp := client.NewRegistrationResponse(c, s.endpointURL(PathRegister+"/"+c.ID))
	resp.ClientSecret, resp.RegistrationAccessToken = secret, regToken
	oauth.WriteJSON(w, http.StatusCreated, resp)
}

// handleRegistration is RFC 7592: read, replace or delete a registration
// with its registration access token.
func (s *Server) handleRegistration(w http.ResponseWriter, r *http.Request, id string) {
	ctx, cancel := oauth.RequestContext(r)
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
		oauth.WriteJSON(w, http.StatusOK, client.NewRegistrationResponse(c, s.endpointURL(PathRegister+"/"+c.ID)))
	case http.MethodPut:
		next, e := s.readRegistration(w, r)
		if e != nil {
			oauth.WriteError(w, e)
			return
		}
		var updated *client.Client
		var secret string
		err := s.store.UpdateClient(ctx, c.ID, func(cur *client.Client) error {
			if next.Public != cur.Public {
				return oauth.NewError("invalid_client_metadata", http.StatusBadRequest, "token_endpoint_auth_method cannot change between none and a secret: register a new client")
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
			if !replaced.Public && !client.UsesAssertion(&replaced) {
				if replaced.SecretHash = cur.SecretHash; replaced.SecretHash == "" {
					secret, replaced.SecretHash = client.NewSecret()
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
			oauth.WriteError(w, s.obs.failures.Store("updating a registration", err))
			return
		}
		s.audit(ctx, "client registration updated", zap.String("client_id", c.ID))
		resp := client.NewRegistrationResponse(updated, s.endpointURL(PathRegister+"/"+c.ID))
		resp.ClientSecret = secret
		oauth.WriteJSON(w, http.StatusOK, resp)
	case http.MethodDelete:
		if err := s.store.DeleteClient(ctx, c.ID); err != nil {
			oauth.WriteError(w, s.obs.failures.Store("deleting a registration", err))
			return
		}
		s.audit(ctx, "client deleted", zap.String("client_id", c.ID), zap.String("by", "registration"))
		if err := s.tokens.RevokeClient(ctx, c.ID); err != nil {
			oauth.WriteError(w, s.obs.failures.Store("revoking a deleted client's tokens", err))
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
func (s *Server) registeredClient(ctx context.Context, r *http.Request, id string) (*client.Client, *oauth.Error) {
	denied := &oauth.Error{Code: "invalid_token", Description: "send the registration access token of this client as Authorization: Bearer", Status: http.StatusUnauthorized}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, denied
	}
	c, inConfig, err := s.clients.Lookup(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && (inConfig || c.RegistrationTokenHash == ""):
		return nil, denied
	case err != nil:
		return nil, s.obs.failures.Store("looking up a client", err)
	}
	if !client.VerifySecret(c.RegistrationTokenHash, tok) {
		return nil, denied
	}
	return c, nil
}
