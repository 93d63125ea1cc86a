package admin

// Grants as administrators see them, and revoking one.

import (
	"context"
	"errors"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

// ErrNoGrant means no live grant has that ID.
var ErrNoGrant = errors.New("no such grant")

// GrantInfo is a grant as the admin API and the console show it.
type GrantInfo struct {
	ID         string `json:"grant_id"`
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name,omitempty"`
	Subject    string `json:"subject"`
	Scope      string `json:"scope"`
	Resource   string `json:"resource,omitempty"`
	Login      string `json:"login,omitempty"`
	// Via is "id_jag" for a grant the person's organisation gave by an
	// identity assertion (no consent page); absent for one they gave.
	Via string `json:"via,omitempty"`
	// Actors are who acted for the subject with the grant's tokens (token
	// exchange), most recent last.
	Actors     []string  `json:"actors,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Grants lists the live grants of a subject or a client (q), newest first:
// those revoked (one by one, or with their person or client) are left out.
func (a *Admin) Grants(ctx context.Context, q store.GrantQuery) ([]*GrantInfo, error) {
	list, err := a.tokens.LiveGrants(ctx, q)
	if err != nil {
		return nil, storeFailed("listing grants", err)
	}
	names := map[string]string{}
	out := []*GrantInfo{}
	for _, g := range list {
		name, ok := names[g.ClientID]
		if !ok {
			if c, _, err := a.registry.Lookup(ctx, g.ClientID); err == nil { // none for a client since deleted
				name = c.Name
			}
			names[g.ClientID] = name
		}
		out = append(out, &GrantInfo{ID: g.ID, ClientID: g.ClientID, ClientName: name, Subject: g.Subject, Scope: g.Scope,
			Resource: g.Resource, Login: g.Login, Via: g.Via, Actors: g.Actors, CreatedAt: g.CreatedAt, LastUsedAt: g.LastUsedAt, ExpiresAt: g.ExpiresAt})
	}
	return out, nil
}

// RevokeGrant revokes one grant: every refresh and access token issued
// from it, on every instance within the revocation promise. The consent
// was the grant's, so the application must ask again; the grant leaves
// every list. by says who did it, for the audit line.
func (a *Admin) RevokeGrant(ctx context.Context, id, by string) error {
	_, err := a.tokens.RevokeGrant(ctx, id, by)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoGrant
	}
	return storeFailed("revoking a grant", err)
}
