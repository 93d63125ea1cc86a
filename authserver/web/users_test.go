package web_test

import (
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/web"
)

// An unknown username costs the same bcrypt as a known one with a wrong
// password: the dummy hash has the users' highest cost.
func TestUnknownUsernameCostsTheSame(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), 12)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, err := web.NewPeople([]*web.User{{Username: "mark", PasswordHash: string(fast)}, {Username: "slow", PasswordHash: string(h)}}, nil, nil, client.NewSecrets())
	if err != nil {
		t.Fatal(err)
	}
	if got := web.DummyHashCost(p); got != 12 {
		t.Fatalf("unknown usernames are checked at cost %d, the users' hashes at 12", got)
	}
}
