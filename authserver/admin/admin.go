// Package admin is the administration of the authorization server
// (tokengate's own, no RFC): registered clients, grants, revocations and
// the signing keys, for operators. The admin API (Handler), the console
// and, through the API, the CLI go through it; the embedding server
// mounts Handler where only administrators reach it (tokengate: Caddy's
// admin endpoint).
package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// Tokens is what administration revokes and lists through: the token
// side of the authorization server, which holds the revocations.
type Tokens interface {
	// RevokeToken revokes one token (owner "" for any client's); how many
	// revocations took effect, 1 or 0.
	RevokeToken(ctx context.Context, token, owner, hint string) (int, error)
	RevokeJTI(ctx context.Context, jti string) error
	RevokeClient(ctx context.Context, clientID string) error
	RevokeSubject(ctx context.Context, subject string) error
	// RevokeGrant revokes one grant's tokens and drops it from the lists;
	// store.ErrNotFound when there is no such grant. by is for the audit
	// line.
	RevokeGrant(ctx context.Context, id, by string) (*store.Grant, error)
	// LiveGrants are q's grants that still issue tokens, newest first.
	LiveGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error)
}

// Admin administers clients (in clients, found through registry), grants
// and tokens (through tokens) and the signing keys.
type Admin struct {
	clients  store.ClientStore
	registry *client.Registry
	tokens   Tokens
	keys     *keys.Ring
	// taken says whether an ID is already a username: clients and people
	// share one namespace.
	taken func(id string) bool
	audit oauth.Audit
	log   *zap.Logger
}

// New administers clients, registry's configuration clients (read-only),
// tokens and ring. taken says whether an ID is a username already.
func New(clients store.ClientStore, registry *client.Registry, tokens Tokens, ring *keys.Ring, taken func(id string) bool, audit oauth.Audit, log *zap.Logger) *Admin {
	return &Admin{clients: clients, registry: registry, tokens: tokens, keys: ring, taken: taken, audit: audit, log: log}
}

// ErrConfigClient means the client is defined in the configuration, which
// the admin API does not change.
var ErrConfigClient = errors.New("the client is defined in the configuration; change it there")

// RegisterClient validates and stores a new client. Validation problems
// are *oauth.Error (invalid_request) naming the field.
func (a *Admin) RegisterClient(ctx context.Context, reg *client.Info) (*client.Info, error) {
	id := client.NewID()
	for a.taken(id) || a.registry.Configured(id) {
		id = client.NewID() // one namespace with usernames (ValidateClientsAndUsers)
	}
	c, secret, e := reg.NewClient(id)
	if e != nil {
		return nil, e
	}
	if algs := a.keys.Algs(); c.IDTokenAlg != "" && !slices.Contains(algs, c.IDTokenAlg) {
		return nil, oauth.ErrInvalidRequest("id_token_alg %s is not one this issuer signs with (%s): a configuration client naming it adds its key",
			c.IDTokenAlg, strings.Join(algs, ", "))
	}
	if err := a.clients.PutClient(ctx, c); err != nil {
		return nil, storeFailed("registering a client", err)
	}
	a.audit(ctx, "client registered", zap.String("client_id", c.ID), zap.String("name", c.Name),
		zap.Strings("grant_types", c.GrantTypes), zap.String("scope", strings.Join(c.Scopes, " ")))
	ci := client.InfoOf(c, client.SourceRegistered)
	ci.Secret = secret
	return ci, nil
}

// Clients lists the configuration's clients, then the registered ones.
func (a *Admin) Clients(ctx context.Context) ([]*client.Info, error) {
	var out []*client.Info
	for _, c := range a.registry.ConfigClients() {
		out = append(out, client.InfoOf(c, client.SourceConfig))
	}
	reg, err := a.clients.Clients(ctx)
	if err != nil {
		return nil, storeFailed("listing clients", err)
	}
	for _, c := range reg {
		if !a.registry.Configured(c.ID) {
			out = append(out, client.InfoOf(c, client.SourceRegistered))
		}
	}
	return out, nil
}

// ClientInfo returns one client; store.ErrNotFound if there is none.
func (a *Admin) ClientInfo(ctx context.Context, id string) (*client.Info, error) {
	c, inConfig, err := a.registry.Lookup(ctx, id)
	if err != nil {
		return nil, storeFailed("reading a client", err)
	}
	if inConfig {
		return client.InfoOf(c, client.SourceConfig), nil
	}
	return client.InfoOf(c, client.SourceRegistered), nil
}

// DeleteClient removes a registered client and revokes its tokens.
func (a *Admin) DeleteClient(ctx context.Context, id string) error {
	if _, inConfig, err := a.registry.Lookup(ctx, id); err != nil || inConfig {
		return storeFailed("reading a client", cmp.Or(err, ErrConfigClient))
	}
	if err := a.clients.DeleteClient(ctx, id); err != nil {
		return storeFailed("deleting a client", err)
	}
	a.audit(ctx, "client deleted", zap.String("client_id", id))
	return storeFailed("revoking a deleted client's tokens", a.tokens.RevokeClient(ctx, id))
}

// RotateSecret gives a registered confidential client a new secret; the
// old one stops working at once.
func (a *Admin) RotateSecret(ctx context.Context, id string) (*client.Info, error) {
	c, inConfig, err := a.registry.Lookup(ctx, id)
	if err != nil || inConfig {
		return nil, storeFailed("reading a client", cmp.Or(err, ErrConfigClient))
	}
	if c.Public {
		return nil, oauth.ErrInvalidRequest("client %s is public and has no secret", id)
	}
	secret, hash := client.NewSecret()
	var rotated *client.Client
	if err := a.clients.UpdateClient(ctx, id, func(cur *client.Client) error { cur.SecretHash, rotated = hash, cur; return nil }); err != nil {
		return nil, storeFailed("rotating a secret", err)
	}
	a.audit(ctx, "client secret rotated", zap.String("client_id", id))
	ci := client.InfoOf(rotated, client.SourceRegistered)
	ci.Secret = secret
	return ci, nil
}

// Revocation names what an administrator revokes: exactly one field.
type Revocation struct {
	Token    string `json:"token"`
	JTI      string `json:"jti"`
	ClientID string `json:"client_id"`
	Subject  string `json:"subject"`
	// GrantID is one grant (see Grants): its tokens, and the consent.
	GrantID string `json:"grant_id"`
}

// Revoke revokes a token, or every token of a client or a user. It
// returns how many revocations took effect: for a token 1 or 0 (unknown,
// expired or already revoked); for a jti, client or user, 1: their tokens are
// cut off without being counted.
func (ad *Admin) Revoke(ctx context.Context, a *Revocation) (int, error) {
	set := 0
	for _, v := range []string{a.Token, a.JTI, a.ClientID, a.Subject, a.GrantID} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return 0, oauth.ErrInvalidRequest("give exactly one of token, jti, client_id, subject or grant_id")
	}
	var n int
	var err error
	switch {
	case a.GrantID != "":
		n, err = 1, ad.RevokeGrant(ctx, a.GrantID, "admin")
	case a.Token != "":
		n, err = ad.tokens.RevokeToken(ctx, a.Token, "", "")
	case a.JTI != "":
		n, err = 1, ad.tokens.RevokeJTI(ctx, a.JTI)
	case a.ClientID != "":
		n, err = 1, ad.tokens.RevokeClient(ctx, a.ClientID)
	default:
		n, err = 1, ad.tokens.RevokeSubject(ctx, a.Subject)
	}
	return n, storeFailed("revoking", err)
}

// Handler serves the admin API below /oauth2/ (the README's "Admin API
// and CLI").
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/clients", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.Clients(r.Context())
		a.reply(w, r, http.StatusOK, list, err)
	})
	mux.HandleFunc("POST /oauth2/clients", func(w http.ResponseWriter, r *http.Request) {
		reg := new(registration)
		if err := readJSON(r, reg); err != nil {
			a.reply(w, r, 0, nil, err)
			return
		}
		if err := reg.scopeFromScopes(); err != nil {
			a.reply(w, r, 0, nil, err)
			return
		}
		ci, err := a.RegisterClient(r.Context(), &reg.Info)
		a.reply(w, r, http.StatusCreated, ci, err)
	})
	mux.HandleFunc("GET /oauth2/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		ci, err := a.ClientInfo(r.Context(), r.PathValue("id"))
		a.reply(w, r, http.StatusOK, ci, err)
	})
	mux.HandleFunc("DELETE /oauth2/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		err := a.DeleteClient(r.Context(), r.PathValue("id"))
		a.reply(w, r, http.StatusOK, map[string]string{"deleted": r.PathValue("id")}, err)
	})
	mux.HandleFunc("POST /oauth2/clients/{id}/secret", func(w http.ResponseWriter, r *http.Request) {
		ci, err := a.RotateSecret(r.Context(), r.PathValue("id"))
		a.reply(w, r, http.StatusOK, ci, err)
	})
	mux.HandleFunc("POST /oauth2/revoke", func(w http.ResponseWriter, r *http.Request) {
		rev := new(Revocation)
		if err := readJSON(r, rev); err != nil {
			a.reply(w, r, 0, nil, err)
			return
		}
		n, err := a.Revoke(r.Context(), rev)
		a.reply(w, r, http.StatusOK, map[string]int{"revoked": n}, err)
	})
	mux.HandleFunc("GET /oauth2/grants", func(w http.ResponseWriter, r *http.Request) {
		q, err := grantQueryOf(r.URL.Query())
		if err != nil {
			a.reply(w, r, 0, nil, err)
			return
		}
		list, err := a.Grants(r.Context(), q)
		a.reply(w, r, http.StatusOK, list, err)
	})
	mux.HandleFunc("POST /oauth2/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Delay string `json:"delay"`
		}
		if err := readJSON(r, &body); err != nil && !errors.Is(err, io.EOF) {
			a.reply(w, r, 0, nil, err)
			return
		}
		delay, err := time.ParseDuration(orDefault(body.Delay, "0s"))
		if err != nil || delay < 0 {
			a.reply(w, r, 0, nil, oauth.ErrInvalidRequest("delay must be a duration like 1h"))
			return
		}
		if err := a.keys.Rotate(r.Context(), delay); err != nil {
			a.reply(w, r, 0, nil, storeFailed("rotating the signing keys", err))
			return
		}
		kids := a.keys.KeyIDs()
		a.audit(r.Context(), "signing keys rotated", zap.String("new_kid", kids[0]), zap.Duration("delay", delay))
		a.reply(w, r, http.StatusOK, map[string]any{"kid": kids[0], "published": kids}, nil)
	})
	return mux
}

// grantQueryOf reads ?subject=S or ?client_id=C, and &limit=N (at most
// store.MaxGrantsPerSubject).
func grantQueryOf(v url.Values) (store.GrantQuery, error) {
	q := store.GrantQuery{Subject: v.Get("subject"), ClientID: v.Get("client_id")}
	if (q.Subject == "") == (q.ClientID == "") {
		return q, oauth.ErrInvalidRequest("give exactly one of subject or client_id")
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxGrantsPerSubject {
			return q, oauth.ErrInvalidRequest("limit must be a number from 1 to %d", store.MaxGrantsPerSubject)
		}
		q.Limit = n
	}
	return q, nil
}

// RotateKeysIfDue runs the scheduled key rotation (see keys.Ring.RotateIfDue);
// every 0 turns it off.
func (a *Admin) RotateKeysIfDue(ctx context.Context, every time.Duration) error {
	added, err := a.keys.RotateIfDue(ctx, every)
	if added {
		kids := a.keys.KeyIDs()
		a.audit(ctx, "signing keys rotated", zap.String("new_kid", kids[0]), zap.String("reason", "scheduled"),
			zap.Duration("every", every), zap.Duration("published_before_signing", keys.Prepublish(every)))
	}
	return err
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// registration is the body of POST /oauth2/clients: a client as the admin
// API shows it, or with "scopes", the list the README's earlier releases
// took for "scope", still read in this release.
type registration struct {
	client.Info
	Scopes []string `json:"scopes,omitempty"`
}

// scopeFromScopes moves the earlier "scopes" into "scope".
func (r *registration) scopeFromScopes() error {
	switch {
	case r.Scopes == nil:
		return nil
	case r.Scope != "":
		return oauth.ErrInvalidRequest(`give "scope" (a space-separated string) or the earlier "scopes" (a list), not both`)
	}
	r.Scope, r.Scopes = strings.Join(r.Scopes, " "), nil
	return nil
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return err
		}
		// The decoder says "json: unknown field" of JSON it read well:
		// name the field, not the format.
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return oauth.ErrInvalidRequest("the body has a field this endpoint does not take: %s (see the README's admin API)", field)
		}
		return oauth.ErrInvalidRequest("the body must be JSON: %v", err)
	}
	return nil
}

// Failure is an administration error the administrator cannot fix by
// changing the request: the store failed (503), or the server did (500).
// Message is what they are told; Err, the cause, is for the log.
type Failure struct {
	Status  int
	Message string
	Err     error
}

func (e *Failure) Error() string { return e.Message + ": " + e.Err.Error() }
func (e *Failure) Unwrap() error { return e.Err }

// storeFailed is err from the store while doing what, as the
// administration reports it: the store's own answers (not found) and the
// server's verdicts pass as they are; anything else is the store failing.
func storeFailed(what string, err error) error {
	var e *oauth.Error
	var af *Failure
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNoGrant) || errors.Is(err, ErrConfigClient) ||
		errors.As(err, &e) || errors.As(err, &af) {
		return err
	}
	return &Failure{Status: http.StatusServiceUnavailable, Message: "the store is unavailable while " + what + "; nothing may have changed: retry shortly", Err: err}
}

// Error is the status and the message an administration error gets,
// for the admin API and the console alike: 400 for bad input (the message
// names the field), 404 for an unknown client or grant, 409 for a
// configured client, an AdminFailure's own (503 for a store that failed),
// and 500 for anything else. The message never carries a cause: a status
// of 500 or more is for the caller to log with the error.
func Error(err error) (int, string) {
	var e *oauth.Error
	var af *Failure
	switch {
	case errors.As(err, &af):
		return af.Status, af.Message
	case errors.As(err, &e):
		return http.StatusBadRequest, e.Description
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "the body is empty; send JSON"
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "no such client"
	case errors.Is(err, ErrNoGrant):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, ErrConfigClient):
		return http.StatusConflict, err.Error()
	}
	return http.StatusInternalServerError, "the server failed; its log has the details"
}

// reply answers with v, or with err as {"error": "..."} and the status
// it deserves; a failure of the store or the server is logged with its
// cause.
func (a *Admin) reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		var msg string
		if status, msg = Error(err); status >= http.StatusInternalServerError {
			a.log.Error("admin API: "+msg, zap.String("path", r.URL.Path), zap.Error(err))
		}
		v = map[string]string{"error": msg}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
