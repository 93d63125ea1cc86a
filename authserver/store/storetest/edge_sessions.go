package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver/store"
)

// edgeSession is a session of subject at site, in provider session sid,
// made created ago, idle for a minute, ending in an hour.
func edgeSession(id, site, subject, sid string, created time.Duration) *store.EdgeSession {
	now := time.Now().Add(-created).Truncate(time.Millisecond).UTC()
	return &store.EdgeSession{ID: id, Site: site, Subject: subject, SID: sid, Claims: json.RawMessage(`{"sub":"` + subject + `","name":"Mark"}`),
		IDToken: "id." + id, AccessToken: "at." + id, RefreshToken: "rt." + id, AccessIssuedAt: now, AccessExpiresAt: now.Add(time.Hour),
		CreatedAt: now, ExpiresAt: in(time.Minute), EndsBy: now.Add(time.Hour)}
}

func edgeIDs(list []*store.EdgeSession) []string {
	var ids []string
	for _, es := range list {
		ids = append(ids, es.ID)
	}
	slices.Sort(ids)
	return ids
}

// testEdgeSessions: a session reads back as stored, is found by its
// subject and by its provider session on its own site only, updates by
// compare-and-swap, and ends by deletion or by its idle end.
func testEdgeSessions(t *testing.T, s store.Store, _ func() store.Store) {
	a := edgeSession("ha", "app", "mark", "sid-1", 0)
	b := edgeSession("hb", "app", "mark", "sid-2", 0)
	other := edgeSession("hc", "wiki", "mark", "sid-1", 0)
	for _, es := range []*store.EdgeSession{a, b, other} {
		if ended, err := s.CreateEdgeSession(ctx, es, 50); err != nil || len(ended) != 0 {
			t.Fatalf("create %s: %v %v", es.ID, ended, err)
		}
	}
	got, err := s.EdgeSession(ctx, "ha")
	must(t, err)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("EdgeSession = %+v, want %+v", got, a)
	}
	_, err = s.EdgeSession(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	list, err := s.EdgeSessions(ctx, "app", "mark", "")
	must(t, err)
	if ids := edgeIDs(list); !slices.Equal(ids, []string{"ha", "hb"}) {
		t.Fatalf("app's sessions of mark: %v", ids)
	}
	list, err = s.EdgeSessions(ctx, "app", "", "sid-1")
	must(t, err)
	if ids := edgeIDs(list); !slices.Equal(ids, []string{"ha"}) {
		t.Fatalf("app's sessions of sid-1: %v", ids)
	}
	if list, _ := s.EdgeSessions(ctx, "app", "", ""); len(list) != 0 {
		t.Fatalf("no subject and no sid found %v", edgeIDs(list))
	}

	// Compare-and-swap: the version moves on; a stale one loses.
	next := *got
	next.AccessToken, next.ExpiresAt = "at2", in(2*time.Minute).Truncate(time.Millisecond).UTC()
	must(t, s.UpdateEdgeSession(ctx, &next, got.Version))
	wantErr(t, s.UpdateEdgeSession(ctx, &next, got.Version), store.ErrConflict)
	got, err = s.EdgeSession(ctx, "ha")
	must(t, err)
	if got.AccessToken != "at2" || got.Version != a.Version+1 {
		t.Fatalf("after the update: %+v", got)
	}
	gone := *got
	gone.ID = "nope"
	wantErr(t, s.UpdateEdgeSession(ctx, &gone, gone.Version), store.ErrNotFound)

	must(t, s.DeleteEdgeSession(ctx, "ha"))
	wantErr(t, s.DeleteEdgeSession(ctx, "ha"), store.ErrNotFound)
	_, err = s.EdgeSession(ctx, "ha")
	wantErr(t, err, store.ErrNotFound)
	list, err = s.EdgeSessions(ctx, "app", "mark", "")
	must(t, err)
	if ids := edgeIDs(list); !slices.Equal(ids, []string{"hb"}) {
		t.Fatalf("after the deletion: %v", ids)
	}

	// Idle past its end, a session is gone.
	idle := edgeSession("hi", "app", "ann", "", 0)
	idle.ExpiresAt = time.Now().Add(150 * time.Millisecond)
	_, err = s.CreateEdgeSession(ctx, idle, 50)
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	_, err = s.EdgeSession(ctx, "hi")
	wantErr(t, err, store.ErrNotFound)
	if list, _ := s.EdgeSessions(ctx, "app", "ann", ""); len(list) != 0 {
		t.Fatalf("an idle session is still listed: %v", edgeIDs(list))
	}
}

// testEdgeSessionsBounded: past the bound, a person's oldest sessions on
// a site end, and are named so that their ending can be told.
func testEdgeSessionsBounded(t *testing.T, s store.Store, _ func() store.Store) {
	for i := range 3 {
		_, err := s.CreateEdgeSession(ctx, edgeSession(fmt.Sprint("b", i), "app", "mark", "", time.Duration(10-i)*time.Minute), 3)
		must(t, err)
	}
	ended, err := s.CreateEdgeSession(ctx, edgeSession("b3", "app", "mark", "", 0), 3)
	must(t, err)
	if !slices.Equal(ended, []string{"b0"}) {
		t.Fatalf("ended %v, want the oldest, b0", ended)
	}
	_, err = s.EdgeSession(ctx, "b0")
	wantErr(t, err, store.ErrNotFound)
	list, err := s.EdgeSessions(ctx, "app", "mark", "")
	must(t, err)
	if ids := edgeIDs(list); !slices.Equal(ids, []string{"b1", "b2", "b3"}) {
		t.Fatalf("left %v", ids)
	}
	// Another site's, and another person's, are counted apart.
	if ended, err := s.CreateEdgeSession(ctx, edgeSession("w0", "wiki", "mark", "", 0), 3); err != nil || len(ended) != 0 {
		t.Fatalf("another site: %v %v", ended, err)
	}
}

// testEdgeSessionContention: of concurrent updates from one version,
// exactly one wins.
func testEdgeSessionContention(t *testing.T, s store.Store, _ func() store.Store) {
	es := edgeSession("hx", "app", "mark", "", 0)
	_, err := s.CreateEdgeSession(ctx, es, 50)
	must(t, err)
	wins, errs := concurrently(20, func(i int) error {
		next := *es
		next.AccessToken = fmt.Sprint("at-", i)
		return s.UpdateEdgeSession(ctx, &next, es.Version)
	})
	if wins != 1 {
		t.Fatalf("%d of 20 updates from one version won", wins)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a losing update: %v", err)
		}
	}
}
