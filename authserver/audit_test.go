package authserver_test

import (
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver"
)

// The ring keeps the latest events, newest first, with their fields in
// order, strings and others alike; past its size the oldest go.
func TestAuditRing(t *testing.T) {
	ring := authserver.NewAuditRing(3)
	for i := range 5 {
		authserver.AddAudit(ring, fmt.Sprintf("event %d", i), zap.String("client_id", "app"), zap.Int("n", i), zap.Strings("scopes", []string{"a", "b"}))
	}
	got := ring.Recent()
	if len(got) != 3 || got[0].Event != "event 4" || got[1].Event != "event 3" || got[2].Event != "event 2" {
		t.Fatalf("recent events %+v", got)
	}
	want := []authserver.AuditField{{Key: "client_id", Value: "app"}, {Key: "n", Value: "4"}, {Key: "scopes", Value: "[a b]"}}
	if fmt.Sprint(got[0].Fields) != fmt.Sprint(want) {
		t.Fatalf("fields %v, want %v", got[0].Fields, want)
	}
	// An empty string (client credentials have no grant_id) is not shown.
	authserver.AddAudit(ring, "token issued", zap.String("client_id", "svc"), zap.String("grant_id", ""))
	if got := ring.Recent()[0].Fields; fmt.Sprint(got) != fmt.Sprint([]authserver.AuditField{{Key: "client_id", Value: "svc"}}) {
		t.Fatalf("fields %v: the empty grant_id is shown", got)
	}
	var none *authserver.AuditRing // a server without a ring records nothing
	authserver.AddAudit(none, "event")
	if none.Recent() != nil {
		t.Fatal("a nil ring has events")
	}
}
