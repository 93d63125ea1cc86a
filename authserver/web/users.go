package web

// The people who can sign in.

import (
	"fmt"
	"strings"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/login"
)

// User is a person who can log in, from the configuration.
type User struct {
	Username string
	// PasswordHash is a bcrypt hash, as `tokengate hash-password` makes.
	PasswordHash string
	Name         string
	Email        string
}

// ValidateUser checks a user's configuration.
func ValidateUser(u *User) error {
	if u.Username == "" {
		return fmt.Errorf("user: username is empty")
	}
	if strings.ContainsAny(u.Username, " \t\r\n") {
		return fmt.Errorf("user %q: username must not contain white space", u.Username)
	}
	if !client.IsBcryptHash(u.PasswordHash) {
		return fmt.Errorf("user %s: the password must be a bcrypt hash: make one with `tokengate hash-password`", u.Username)
	}
	if u.Email != "" && !strings.Contains(u.Email, "@") {
		return fmt.Errorf("user %s: email %q is not an email address", u.Username, u.Email)
	}
	return nil
}

// People are who may sign in: the configuration's users (by username)
// and the login providers (by name, and in order). Clients and people
// share one namespace, checked by ValidateClientsAndUsers and
// checkProviderNames.
type People struct {
	users     map[string]*User
	providers map[string]*login.Provider
	list      []*login.Provider
	// dummyHash is what an unknown username's password is checked
	// against, so that it costs what a known one's does.
	dummyHash func() []byte
	// secrets paces bcrypt comparisons, shared with client secrets.
	secrets *client.Secrets
}

// NewPeople checks that users, providers and clients do not share names
// or subject prefixes, and holds users and providers. secrets paces the
// bcrypt comparisons of passwords with the clients' secrets.
func NewPeople(users []*User, providers []*login.Provider, clients []*client.Client, secrets *client.Secrets) (*People, error) {
	if err := checkProviderNames(providers, clients, users); err != nil {
		return nil, err
	}
	p := &People{users: map[string]*User{}, providers: map[string]*login.Provider{}, dummyHash: dummyHashFor(users), secrets: secrets}
	for _, lp := range providers {
		if p.providers[lp.Name()] != nil {
			return nil, fmt.Errorf("login_provider %s is defined twice", lp.Name())
		}
		p.providers[lp.Name()] = lp
		p.list = append(p.list, lp)
	}
	for _, u := range users {
		p.users[u.Username] = u
	}
	return p, nil
}

// identity is what ID tokens and userinfo say of a configured user (a
// zero one for anyone else): their name and email as configured, which
// the operator vouches for.
func (p *People) identity(username string) store.OpenID {
	u := p.users[username]
	if u == nil {
		return store.OpenID{PreferredUsername: username}
	}
	return store.OpenID{Name: u.Name, PreferredUsername: u.Username, Email: u.Email, EmailVerified: u.Email != ""}
}

// Identity is identity for the configured user username; false for
// anyone else (a login provider's people, whose claims their grants keep).
func (p *People) Identity(username string) (store.OpenID, bool) {
	if p.users[username] == nil {
		return store.OpenID{}, false
	}
	return p.identity(username), true
}

// IsUser says whether name is a configured username.
func (p *People) IsUser(name string) bool { return p.users[name] != nil }
