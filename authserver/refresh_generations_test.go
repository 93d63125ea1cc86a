package authserver_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/authserver/store/redisstore"
	"github.com/tokengate/tokengate/internal/redistest"
)

// refreshAs refreshes rt as the webapp client.
func (e *env) refreshAs(rt string) *http.Response {
	return e.post("/oauth/token", form("grant_type", "refresh_token", "refresh_token", rt), []string{"webapp", "appsecret"})
}

// refreshed refreshes rt and returns the answer's refresh and access tokens.
func (e *env) refreshed(t *testing.T, rt string) (string, string) {
	t.Helper()
	resp := e.refreshAs(rt)
	m := decode(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %v", resp.StatusCode, m)
	}
	return m["refresh_token"].(string), m["access_token"].(string)
}

// A grant's refresh tokens carry their generation under the server's MAC:
// any earlier one, however far back, is reuse that revokes the grant; a
// made-up one (a damaged MAC, another grant's secret, a secret of the old
// length) is refused and revokes nothing.
func TestRefreshTokenGenerations(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		e := newEnvWith(t, st, "ES256")
		p := e.person()
		chain := []string{decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))["refresh_token"].(string)}
		for range 5 {
			next, _ := e.refreshed(t, chain[len(chain)-1])
			chain = append(chain, next)
		}
		other := decode(t, e.exchange(e.codeFor(t, p, e.stdAuth())))["refresh_token"].(string)
		cur := chain[len(chain)-1]
		grant, secret, _ := strings.Cut(cur, ".")
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(raw) != 40 || binary.BigEndian.Uint64(raw) != 6 {
			t.Fatalf("the sixth refresh token's secret is %d bytes of generation %d (%v)", len(raw), binary.BigEndian.Uint64(raw), err)
		}
		damaged := append([]byte(nil), raw...)
		damaged[len(damaged)-1] ^= 1
		earlier := append([]byte(nil), raw...)
		binary.BigEndian.PutUint64(earlier, 2) // a generation that was, under the wrong MAC
		otherGrant, _, _ := strings.Cut(other, ".")
		_, thirdSecret, _ := strings.Cut(chain[2], ".")
		for name, forged := range map[string]string{
			"damaged MAC":            grant + "." + base64.RawURLEncoding.EncodeToString(damaged),
			"earlier generation":     grant + "." + base64.RawURLEncoding.EncodeToString(earlier),
			"another grant's secret": otherGrant + "." + thirdSecret,
			"old length":             grant + "." + oauth.RandomToken(32),
			"neither length":         grant + "." + oauth.RandomToken(20),
		} {
			m := wantOAuthError(t, e.refreshAs(forged), 400, "invalid_grant")
			if strings.Contains(fmt.Sprint(m["error_description"]), "already used") {
				t.Fatalf("%s: taken for reuse: %v", name, m)
			}
		}
		// Neither grant noticed.
		cur, _ = e.refreshed(t, cur)
		other, _ = e.refreshed(t, other)

		// The second token, five generations back, is reuse.
		m := wantOAuthError(t, e.refreshAs(chain[1]), 400, "invalid_grant")
		if !strings.Contains(fmt.Sprint(m["error_description"]), "already used") {
			t.Fatalf("an earlier token: %v", m)
		}
		wantOAuthError(t, e.refreshAs(cur), 400, "invalid_grant")
		// The other grant is its own.
		e.refreshed(t, other)
	})
}

// legacyToken is a refresh token as tokengate issued it before
// generations: a 32-byte secret, and a record of its own in the store.
type legacyToken struct {
	grant, secret string
	issued        time.Time
}

func newLegacyToken() legacyToken {
	return legacyToken{grant: oauth.RandomToken(16), secret: oauth.RandomToken(32), issued: time.Now().UTC().Truncate(time.Millisecond)}
}

func (l legacyToken) String() string { return l.grant + "." + l.secret }

// writeBolt writes the token into the file at path as the earlier version
// did: in the refresh_tokens bucket under "<grant>\x00<hash>", a header
// (expiry in Unix nanoseconds, use count; 8 bytes each) and the JSON of
// store.RefreshToken.
func (l legacyToken) writeBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exp := l.issued.Add(time.Hour)
	rt := store.RefreshToken{GrantID: l.grant, Hash: oauth.HashToken(l.secret), ClientID: "webapp", Subject: "mark", Scope: "read write",
		AuthTime: l.issued, IssuedAt: l.issued, ExpiresAt: exp}
	data, _ := json.Marshal(rt)
	val := make([]byte, 16, 16+len(data))
	binary.BigEndian.PutUint64(val, uint64(exp.UnixNano()))
	val = append(val, data...)
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("refresh_tokens"))
		if err != nil {
			return err
		}
		return b.Put([]byte(l.grant+"\x00"+rt.Hash), val)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeRedis writes the token as the earlier version did: a string under
// "<prefix>rt:{<grant>}:<hash>", a state byte and compact JSON.
func (l legacyToken) writeRedis(t *testing.T, url, prefix string) {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ms := l.issued.UnixMilli()
	val := fmt.Sprintf(`0{"c":"webapp","s":"mark","p":"read write","t":%d,"i":%d,"e":%d}`, ms, ms, ms+time.Hour.Milliseconds())
	key := prefix + "rt:{" + l.grant + "}:" + oauth.HashToken(l.secret)
	if err := rdb.Set(context.Background(), key, val, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// Refresh tokens issued before generations keep working until they rotate
// (into tokens of the new form) or expire; once rotated, presenting one
// again is reuse.
func TestLegacyRefreshTokensKeepWorking(t *testing.T) {
	check := func(t *testing.T, st store.Store, l legacyToken) {
		e := newEnvWith(t, st, "ES256")
		next, _ := e.refreshed(t, l.String())
		if _, secret, _ := strings.Cut(next, "."); len(secret) != 54 {
			t.Fatalf("the legacy token rotated into %q, not a token of the new form", next)
		}
		next, at := e.refreshed(t, next)
		wantOAuthError(t, e.refreshAs(l.String()), 400, "invalid_grant")
		wantOAuthError(t, e.refreshAs(next), 400, "invalid_grant")
		if _, err := e.validator.Validate(at, ""); err == nil {
			t.Fatal("the grant survived the reuse of its legacy token")
		}
	}
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tg.db")
		l := newLegacyToken()
		l.writeBolt(t, path)
		st, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		check(t, st, l)
	})
	t.Run("redis", func(t *testing.T) {
		srv, prefix := redistest.Start(t), redistest.Prefix(t)
		l := newLegacyToken()
		l.writeRedis(t, srv.URL, prefix)
		st, err := redisstore.New(redisstore.Options{Addresses: []string{srv.URL}, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		check(t, st, l)
	})
}
