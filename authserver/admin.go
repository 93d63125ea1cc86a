package authserver

// Administration (tokengate-specific, no RFC): registered clients, revocations and key rotation for operators.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
)

// Administration: registered clients, revocation and key rotation. The
// embedding server mounts AdminHandler where only administrators reach it
// (tokengate: Caddy's admin endpoint).

// ErrConfigClient means the client is defined in the configuration, which
// the admin API does not change.
var ErrConfigClient = errors.New("the client is defined in the configuration; change it there")

// RegisterClient validates and stores a new client. Validation problems
// are *oauth.Error (invalid_request) naming the field.
func (s *Server) RegisterClient(ctx context.Context, reg *client.Info) (*client.Info, error) {
	id := client.NewID()
	for s.users[id] != nil || s.clients.Configured(id) {
		id = client.NewID() // one namespace with usernames (ValidateClientsAndUsers)
	}
	c, secret, e := reg.NewClient(id)
	if e != nil {
		return nil, e
	}
	if err := s.store.PutClient(ctx, c); err != nil {
		return nil, storeFailed("registering a client", err)
	}
	s.audit(ctx, "client registered", zap.String("client_id", c.ID), zap.String("name", c.Name),
		zap.Strings("grant_types", c.GrantTypes), zap.String("scope", strings.Join(c.Scopes, " ")))
	ci := client.InfoOf(c, client.SourceRegistered)
	ci.Secret = secret
	return ci, nil
}

// Clients lists the configuration's clients, then the registered ones.
func (s *Server) Clients(ctx context.Context) ([]*client.Info, error) {
	var out []*client.Info
	for _, c := range s.cfg.Clients {
		out = append(out, client.InfoOf(c, client.SourceConfig))
	}
	reg, err := s.store.Clients(ctx)
	if err != nil {
		return nil, storeFailed("listing clients", err)
	}
	for _, c := range reg {
		if !s.clients.Configured(c.ID) {
			out = append(out, client.InfoOf(c, client.SourceRegistered))
		}
	}
	return out, nil
}

// ClientInfo returns one client; store.ErrNotFound if there is none.
func (s *Server) ClientInfo(ctx context.Context, id string) (*client.Info, error) {
	c, inConfig, err := s.clients.Lookup(ctx, id)
	if err != nil {
		return nil, storeFailed("reading a client", err)
	}
	if inConfig {
		return client.InfoOf(c, client.SourceConfig), nil
	}
	return client.InfoOf(c, client.SourceRegistered), nil
}

// DeleteClient removes a registered client and revokes its tokens.
func (s *Server) DeleteClient(ctx context.Context, id string) error {
	if _, inConfig, err := s.clients.Lookup(ctx, id); err != nil || inConfig {
		return storeFailed("reading a client", cmp.Or(err, ErrConfigClient))
	}
	if err := s.store.DeleteClient(ctx, id); err != nil {
		return storeFailed("deleting a client", err)
	}
	s.audit(ctx, "client deleted", zap.String("client_id", id))
	return storeFailed("revoking a deleted client's tokens", s.RevokeClient(ctx, id))
}

// RotateSecret gives a registered confidential client a new secret; the
// old one stops working at once.
func (s *Server) RotateSecret(ctx context.Context, id string) (*client.Info, error) {
	c, inConfig, err := s.clients.Lookup(ctx, id)
	if err != nil || inConfig {
		return nil, storeFailed("reading a client", cmp.Or(err, ErrConfigClient))
	}
	if c.Public {
		return nil, oauth.ErrInvalidRequest("client %s is public and has no secret", id)
	}
	secret, hash := client.NewSecret()
	var rotated *client.Client
	if err := s.store.UpdateClient(ctx, id, func(cur *client.Client) error { cur.SecretHash, rotated = hash, cur; return nil }); err != nil {
		return nil, storeFailed("rotating a secret", err)
	}
	s.audit(ctx, "client secret rotated", zap.String("client_id", id))
	ci := client.InfoOf(rotated, client.SourceRegistered)
	ci.Secret = secret
	return ci, nil
}

// AdminRevocation names what an administrator revokes: exactly one field.
type AdminRevocation struct {
	Token    string `json:"token"`
	JTI      string `json:"jti"`
	ClientID string `json:"client_id"`
	Subject  string `json:"subject"`
	// GrantID is one grant (see Grants): its tokens, and the consent.
	GrantID string `json:"grant_id"`
}

// AdminRevoke revokes a token, or every token of a client or a user. It
// returns how many revocations took effect: for a token 1 or 0 (unknown,
// expired or already revoked); for a jti, client or user, 1: their tokens are
// cut off without being counted.
func (s *Server) AdminRevoke(ctx context.Context, a *AdminRevocation) (int, error) {
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
		n, err = 1, s.RevokeGrant(ctx, a.GrantID, "admin")
	case a.Token != "":
		n, err = s.RevokeToken(ctx, a.Token, "", "")
	case a.JTI != "":
		n, err = 1, s.RevokeJTI(ctx, a.JTI)
	case a.ClientID != "":
		n, err = 1, s.RevokeClient(ctx, a.ClientID)
	default:
		n, err = 1, s.RevokeSubject(ctx, a.Subject)
	}
	return n, storeFailed("revoking", err)
}

// AdminHandler serves the admin API below /oauth2/ (the README's "Admin API and CLI").
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/clients", func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Clients(r.Context())
		s.adminReply(w, r, http.StatusOK, list, err)
	})
	mux.HandleFunc("POST /oauth2/clients", func(w http.ResponseWriter, r *http.Request) {
		reg := new(client.Info)
		if err := readJSON(r, reg); err != nil {
			s.adminReply(w, r, 0, nil, err)
			return
		}
		ci, err := s.RegisterClient(r.Context(), reg)
		s.adminReply(w, r, http.StatusCreated, ci, err)
	})
	mux.HandleFunc("GET /oauth2/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		ci, err := s.ClientInfo(r.Context(), r.PathValue("id"))
		s.adminReply(w, r, http.StatusOK, ci, err)
	})
	mux.HandleFunc("DELETE /oauth2/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		err := s.DeleteClient(r.Context(), r.PathValue("id"))
		s.adminReply(w, r, http.StatusOK, map[string]string{"deleted": r.PathValue("id")}, err)
	})
	mux.HandleFunc("POST /oauth2/clients/{id}/secret", func(w http.ResponseWriter, r *http.Request) {
		ci, err := s.RotateSecret(r.Context(), r.PathValue("id"))
		s.adminReply(w, r, http.StatusOK, ci, err)
	})
	mux.HandleFunc("POST /oauth2/revoke", func(w http.ResponseWriter, r *http.Request) {
		a := new(AdminRevocation)
		if err := readJSON(r, a); err != nil {
			s.adminReply(w, r, 0, nil, err)
			return
		}
		n, err := s.AdminRevoke(r.Context(), a)
		s.adminReply(w, r, http.StatusOK, map[string]int{"revoked": n}, err)
	})
	mux.HandleFunc("GET /oauth2/grants", func(w http.ResponseWriter, r *http.Request) {
		q, err := grantQueryOf(r.URL.Query())
		if err != nil {
			s.adminReply(w, r, 0, nil, err)
			return
		}
		list, err := s.Grants(r.Context(), q)
		s.adminReply(w, r, http.StatusOK, list, err)
	})
	mux.HandleFunc("POST /oauth2/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Delay string `json:"delay"`
		}
		if err := readJSON(r, &body); err != nil && !errors.Is(err, io.EOF) {
			s.adminReply(w, r, 0, nil, err)
			return
		}
		delay, err := time.ParseDuration(orDefault(body.Delay, "0s"))
		if err != nil || delay < 0 {
			s.adminReply(w, r, 0, nil, oauth.ErrInvalidRequest("delay must be a duration like 1h"))
			return
		}
		if err := s.keys.Rotate(r.Context(), delay); err != nil {
			s.adminReply(w, r, 0, nil, storeFailed("rotating the signing keys", err))
			return
		}
		kids := s.keys.KeyIDs()
		s.audit(r.Context(), "signing keys rotated", zap.String("new_kid", kids[0]), zap.Duration("delay", delay))
		s.adminReply(w, r, http.StatusOK, map[string]any{"kid": kids[0], "published": kids}, nil)
	})
	return s.withRequester(mux)
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

// RotateKeysIfDue runs the scheduled key rotation (see Keys.RotateIfDue);
// every 0 turns it off.
func (s *Server) RotateKeysIfDue(ctx context.Context, every time.Duration) error {
	added, err := s.keys.RotateIfDue(ctx, every)
	if added {
		kids := s.keys.KeyIDs()
		s.audit(ctx, "signing keys rotated", zap.String("new_kid", kids[0]), zap.String("reason", "scheduled"),
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

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return err
		}
		return oauth.ErrInvalidRequest("the body must be JSON: %v", err)
	}
	return nil
}

// AdminFailure is an administration error the administrator cannot fix by
// changing the request: the store failed (503), or the server did (500).
// Message is what they are told; Err, the cause, is for the log.
type AdminFailure struct {
	Status  int
	Message string
	Err     error
}

func (e *AdminFailure) Error() string { return e.Message + ": " + e.Err.Error() }
func (e *AdminFailure) Unwrap() error { return e.Err }

// storeFailed is err from the store while doing what, as the
// administration reports it: the store's own answers (not found) and the
// server's verdicts pass as they are; anything else is the store failing.
func storeFailed(what string, err error) error {
	var e *oauth.Error
	var af *AdminFailure
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNoGrant) || errors.Is(err, ErrConfigClient) ||
		errors.As(err, &e) || errors.As(err, &af) {
		return err
	}
	return &AdminFailure{Status: http.StatusServiceUnavailable, Message: "the store is unavailable while " + what + "; nothing may have changed: retry shortly", Err: err}
}

// AdminError is the status and the message an administration error gets,
// for the admin API and the console alike: 400 for bad input (the message
// names the field), 404 for an unknown client or grant, 409 for a
// configured client, an AdminFailure's own (503 for a store that failed),
// and 500 for anything else. The message never carries a cause: a status
// of 500 or more is for the caller to log with the error.
func AdminError(err error) (int, string) {
	var e *oauth.Error
	var af *AdminFailure
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

// adminReply answers with v, or with err as {"error": "..."} and the status
// it deserves; a failure of the store or the server is logged with its
// cause.
func (s *Server) adminReply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		var msg string
		if status, msg = AdminError(err); status >= http.StatusInternalServerError {
			s.log.Error("admin API: "+msg, zap.String("path", r.URL.Path), zap.Error(err))
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
