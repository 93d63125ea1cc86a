package authserver

// The people who can sign in.

import (
	"fmt"
	"strings"

	"github.com/tokengate/tokengate/authserver/client"
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
