package authserver

import "golang.org/x/crypto/bcrypt"

// BcryptRuns is how many bcrypt comparisons of client secrets s has run.
func BcryptRuns(s *Server) int64 { return s.secrets.bcrypts.Load() }

// DummyHashCost is the bcrypt cost unknown usernames' passwords are
// checked at.
func DummyHashCost(s *Server) int {
	c, _ := bcrypt.Cost(s.dummyHash())
	return c
}
