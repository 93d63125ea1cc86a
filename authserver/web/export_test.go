package web

import "golang.org/x/crypto/bcrypt"

// DummyHashCost is the bcrypt cost unknown usernames' passwords are
// checked at.
func DummyHashCost(p *People) int {
	c, _ := bcrypt.Cost(p.dummyHash())
	return c
}
