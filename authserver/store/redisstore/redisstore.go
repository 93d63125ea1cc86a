// Package redisstore keeps tokengate's state in Redis so that many instances
// share codes, refresh tokens, revocations, clients and keys. It works with a
// standalone server, Sentinel or Cluster through go-redis's UniversalClient;
// keys that scripts touch together share a hash tag.
package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/tokengate/tokengate/authserver/store"
)

// Options configures a Store.
type Options struct {
	// Addresses are redis:// or rediss:// URLs (or host:port). One address
	// is a standalone server; several are a Cluster, or Sentinels when
	// MasterName is set. User, password and DB come from the first URL.
	Addresses []string
	// MasterName is the Sentinel master's name.
	MasterName string
	// Prefix starts every key, so several deployments can share a server.
	Prefix string
	// WaitReplicas, when above 0, makes every write wait (Redis WAIT, in
	// the same pipeline) until that many replicas have it, for up to
	// WaitTimeout; a write they do not confirm is reported as an error, so
	// that nothing is answered as done that a failover could lose.
	WaitReplicas int
}

// WaitTimeout bounds how long a write waits for its replicas.
const WaitTimeout = time.Second

// Store is a Redis-backed store.Store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	wait   int
}

var _ store.Store = (*Store)(nil)

// New connects to Redis. It does not wait for the server: the first command
// reports an unreachable server.
func New(o Options) (*Store, error) {
	if strings.ContainsAny(o.Prefix, "{}") {
		// Braces would make the prefix the hash tag of every key,
		// putting all of them in one Cluster slot.
		return nil, fmt.Errorf("redis key prefix %q must not contain { or }", o.Prefix)
	}
	uo, err := universalOptions(o)
	if err != nil {
		return nil, err
	}
	if o.WaitReplicas < 0 {
		return nil, fmt.Errorf("wait_replicas %d must not be negative", o.WaitReplicas)
	}
	return &Store{rdb: redis.NewUniversalClient(uo), prefix: o.Prefix, wait: o.WaitReplicas}, nil
}

func universalOptions(o Options) (*redis.UniversalOptions, error) {
	if len(o.Addresses) == 0 {
		return nil, errors.New("no Redis address given")
	}
	uo := &redis.UniversalOptions{
		MasterName:   o.MasterName,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   1,
	}
	for i, a := range o.Addresses {
		u, err := url.Parse(a)
		if err != nil || u.Scheme == "" || u.Host == "" {
			uo.Addrs = append(uo.Addrs, a) // plain host:port
			continue
		}
		ro, err := redis.ParseURL(a)
		if err != nil {
			// Not the URL itself: it may carry a password.
			return nil, fmt.Errorf("redis address #%d (%s://%s): %w", i+1, u.Scheme, u.Host, err)
		}
		uo.Addrs = append(uo.Addrs, ro.Addr)
		if i == 0 {
			uo.Username, uo.Password, uo.DB, uo.TLSConfig = ro.Username, ro.Password, ro.DB, ro.TLSConfig
		}
	}
	return uo, nil
}

// recordUsersScript is store.RecordUsers on the hash KEYS[1] (username →
// Unix ms of removal, 0 while configured): ARGV[1] now, ARGV[2] forget
// (ms), ARGV[3..] the configured names. Returns {removed, newly}.
var recordUsersScript = redis.NewScript(`
local now, forget = tonumber(ARGV[1]), tonumber(ARGV[2])
local configured = {}
for i = 3, #ARGV do
  configured[ARGV[i]] = true
  redis.call('HSET', KEYS[1], ARGV[i], '0')
end
local all = redis.call('HGETALL', KEYS[1])
local removed, newly = {}, {}
for i = 1, #all, 2 do
  local name, at = all[i], tonumber(all[i + 1])
  if not configured[name] then
    if at == 0 then
      redis.call('HSET', KEYS[1], name, ARGV[1])
      table.insert(newly, name)
      table.insert(removed, name)
    elseif at + forget < now then
      redis.call('HDEL', KEYS[1], name)
    else
      table.insert(removed, name)
    end
  end
end
return {removed, newly}
`)

// RecordUsers implements store.Store.
func (s *Store) RecordUsers(ctx context.Context, names []string, now time.Time, forget time.Duration) ([]string, []string, error) {
	args := []any{now.UnixMilli(), forget.Milliseconds()}
	for _, n := range names {
		args = append(args, n)
	}
	res, err := s.runWrite(ctx, recordUsersScript, []string{s.key("users")}, args...).Slice()
	if err != nil {
		return nil, nil, err
	}
	list := func(v any) []string {
		var out []string
		items, _ := v.([]any)
		for _, it := range items {
			if name, ok := it.(string); ok {
				out = append(out, name)
			}
		}
		return out
	}
	return list(res[0]), list(res[1]), nil
}

var generationScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if g then return {g, 0} end
redis.call('SET', KEYS[1], ARGV[1])
return {ARGV[1], 1}
`)

// Generation implements store.Store.
func (s *Store) Generation(ctx context.Context) (string, bool, error) {
	key := s.key("generation")
	// Instances read it every second: a plain read, so that only a missing
	// marker pays a write (and, with wait_replicas, the wait).
	if gen, err := s.rdb.Get(ctx, key).Result(); err == nil {
		return gen, false, nil
	} else if !errors.Is(err, redis.Nil) {
		return "", false, err
	}
	res, err := s.runWrite(ctx, generationScript, []string{key}, store.NewGeneration()).Slice()
	if err != nil {
		return "", false, err
	}
	gen, _ := res[0].(string)
	created, _ := res[1].(int64)
	return gen, created == 1, nil
}

var _ store.Warner = (*Store)(nil)

// Warnings names what in the server's configuration can lose tokengate's
// data: an eviction policy that may drop keys under memory pressure, and
// no persistence (a restart comes back empty). Servers that refuse CONFIG
// (managed services) give no warnings.
func (s *Store) Warnings(ctx context.Context) []string {
	var out []string
	cfg, err := s.rdb.ConfigGet(ctx, "*").Result()
	if err != nil {
		return nil
	}
	if p := cfg["maxmemory-policy"]; p != "" && p != "noeviction" {
		out = append(out, fmt.Sprintf("Redis maxmemory-policy is %s: under memory pressure Redis may drop signing keys, refresh tokens and revocations; set it to noeviction", p))
	}
	if cfg["appendonly"] != "yes" && cfg["save"] == "" {
		out = append(out, "Redis persistence is off (appendonly no, no save points): a restart of Redis loses every refresh token, code and registered client; turn on appendonly yes")
	}
	return out
}

// Size is what the store holds under its prefix: its keys and their
// memory (MEMORY USAGE), on every master of a Cluster. Tools measuring the
// store's growth read it; it walks every key, so it is no health check.
func (s *Store) Size(ctx context.Context) (records int, bytes int64, err error) {
	var mu sync.Mutex
	count := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		cmds, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.MemoryUsage(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cmds {
			n, err := c.(*redis.IntCmd).Result()
			if err == nil {
				records++
				bytes += n
			}
		}
		return nil
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, count)
	case *redis.Client:
		err = count(ctx, c)
	default:
		err = fmt.Errorf("sizing a %T is not supported", c)
	}
	return records, bytes, err
}

// Ping checks that Redis answers (every master, for a Cluster), so that a
// server that is not running is named at start rather than by the first
// command that needs it.
func (s *Store) Ping(ctx context.Context) error {
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() })
	}
	return s.rdb.Ping(ctx).Err()
}

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

func (s *Store) key(parts ...string) string {
	k := s.prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

func px(exp time.Time) int64 { return store.TTL(exp).Milliseconds() }

// luaStoreRefresh is the scripts' one way to store a grant's refresh
// state (as compactRefresh) at key: the grant fields of record g (client
// c, subject s, scope p, auth time t, resource a, OpenID o, DPoP key k), its current
// token of generation gen and hash h issued at iat and expiring at exp
// (Unix ms), but never later than maxage ms after the auth time
// (store.Successor.MaxAge); bound to g's key, or to jkt when g has none
// (store.Successor.JKT); the previous token's hash ph and first exchange
// ra, when there was one. Returns the expiry.
const luaStoreRefresh = `
local function store_refresh(key, g, iat, exp, maxage, jkt, gen, h, ph, ra)
  local i, e, ma = tonumber(iat), tonumber(exp), tonumber(maxage or '0')
  if ma > 0 and g.t and g.t + ma < e then e = g.t + ma end
  local k = g.k
  if not k and jkt and jkt ~= '' then k = jkt end
  local t = {c = g.c, s = g.s, p = g.p, t = g.t, a = g.a, o = g.o, k = k, i = i, e = e, g = gen, h = h, ph = ph, ra = ra}
  redis.call('SET', key, cjson.encode(t), 'PX', math.max(1, e - i))
  return e
end
` + luaTouchGrant

// luaTouchGrant records a use of the grant whose record (a hash, see
// grantFields) is at key, at "at", its successor expiring at "till" (0
// for none), as store.Grant.Touch does, interval being
// store.GrantTouchInterval (ms). Two fields are read, and in the common
// case (a use within the interval) nothing is written.
const luaTouchGrant = `
local function touch_grant(key, at, till, interval)
  local v = redis.call('HMGET', key, 'u', 'e')
  if not v[2] then return end
  at, till, interval = tonumber(at), tonumber(till or '0'), tonumber(interval)
  local u, e = tonumber(v[1] or '0'), tonumber(v[2])
  if u > 0 and at - u < interval then return end
  if till > 0 and till + interval > e then
    redis.call('HSET', key, 'u', string.format('%d', at), 'e', string.format('%d', till + interval))
    redis.call('PEXPIREAT', key, string.format('%d', till + interval))
  else
    redis.call('HSET', key, 'u', string.format('%d', at))
  end
end
`

// Single-use records (codes, and refresh tokens from before generations)
// are strings: a state byte ('0' unused, '1' used) and compact JSON. A
// string costs Redis less than a hash, and a million grants make that
// count.
//
// consumeScript redeems the code KEYS[1] for the client ARGV[1]: the first
// use marks it used and, when KEYS[3] is given, stores there the grant's
// refresh state, its first token of hash ARGV[2], made of the code's own
// grant fields (client c, subject s, scope p, auth time t, resource a)
// with issued-at ARGV[3], expiry ARGV[4] (Unix ms), the grant's maximum
// age ARGV[5] (ms, 0 for none) and DPoP key ARGV[6]. One script, so that
// a token request that writes is one round trip. Every use that issues a
// token is noted on the grant's record, KEYS[2] (same slot), at the token's
// issue or, without one, ARGV[7] (now, Unix ms); ARGV[8] is
// store.GrantTouchInterval in ms. Returns {1|2|3, record}: first use, used
// before, another client's code (untouched).
var consumeScript = redis.NewScript(luaStoreRefresh + `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local body = string.sub(v, 2)
if string.sub(v, 1, 1) ~= '0' then return {2, body} end
local r = cjson.decode(body)
if r.c ~= ARGV[1] then return {3, body} end
redis.call('SETRANGE', KEYS[1], 0, '1')
if KEYS[3] then
  local e = store_refresh(KEYS[3], r, ARGV[3], ARGV[4], ARGV[5], ARGV[6], 1, ARGV[2])
  touch_grant(KEYS[2], ARGV[3], e, ARGV[8])
else
  touch_grant(KEYS[2], ARGV[7], 0, ARGV[8])
end
return {1, body}
`)

// rotateScript is store.RefreshToken's Rotation in one script: the token
// of generation ARGV[2] and hash ARGV[3] presented for the client ARGV[1]
// to the grant's refresh state KEYS[1] or, for generation 0, to the
// token's own record KEYS[3] while it is unused (and to the state once it
// is used). A successor (hash ARGV[4], issued at ARGV[5], expiring at
// ARGV[6], maximum age ARGV[7] ms, DPoP key ARGV[9]) replaces the current
// token, or a retry within ARGV[8] ms of the previous one's first
// exchange; the use is noted on the grant's record KEYS[2] (ARGV[10] is
// store.GrantTouchInterval in ms). Returns {outcome, state} with outcome 1
// rotated, 2 used before, 3 another client's, 4 bound to another key;
// nothing for an unknown token.
var rotateScript = redis.NewScript(luaStoreRefresh + `
local gen, hash = tonumber(ARGV[2]), ARGV[3]
local function state()
  local v = redis.call('GET', KEYS[1])
  if v then return cjson.decode(v) end
end
local t, legacy
if gen > 0 then
  t = state()
  if not t then return false end
else
  local v = redis.call('GET', KEYS[3])
  if not v then return false end
  t = cjson.decode(string.sub(v, 2))
  if string.sub(v, 1, 1) == '0' then
    t.g, t.h, t.ph, t.ra, legacy = 0, hash, nil, nil, true
  else
    t = state() or {c = t.c, s = t.s, p = t.p, t = t.t, a = t.a, o = t.o, k = t.k, i = t.i, e = t.e, g = 1, h = ''}
  end
end
local g = t.g or 0
local body = cjson.encode(t)
local same = t.c == ARGV[1]
local current = gen == g and t.h == hash
if gen > g then return false end
if same and t.k and t.k ~= ARGV[9] then return {4, body} end
if current and not same then return {3, body} end
local ph, ra = hash, tonumber(ARGV[5])
if not current then
  local grace = tonumber(ARGV[8])
  if not (gen + 1 == g and same and t.ph == hash and grace > 0 and ra - t.ra <= grace) then return {2, body} end
  ph, ra = t.ph, t.ra
end
if legacy then redis.call('SETRANGE', KEYS[3], 0, '1') end
local e = store_refresh(KEYS[1], t, ARGV[5], ARGV[6], ARGV[7], ARGV[9], gen + 1, ARGV[4], ph, ra)
touch_grant(KEYS[2], ARGV[5], e, ARGV[10])
return {1, body}
`)

// write sends the commands queue adds, which touch key's slot, and, when
// the store waits for replicas, WAIT after them in the same pipeline: one
// round trip either way. In a Cluster the pipeline goes to key's master,
// where WAIT means something; a slot moving meanwhile is an error to retry.
func (s *Store) write(ctx context.Context, key string, queue func(p redis.Pipeliner)) error {
	if s.wait == 0 {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { queue(p); return nil })
		return err
	}
	var node redis.Cmdable = s.rdb
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return err
		}
		node = n
	}
	var wait *redis.Cmd
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		queue(p)
		wait = p.Do(ctx, "WAIT", s.wait, WaitTimeout.Milliseconds())
		return nil
	})
	if err != nil {
		return err
	}
	if n, _ := wait.Int64(); n < int64(s.wait) {
		return fmt.Errorf("only %d of %d replicas confirmed a write within %s", n, s.wait, WaitTimeout)
	}
	return nil
}

// runWrite runs a script that writes, through write when the store waits
// for replicas. The result is the script's, or the replicas' error.
func (s *Store) runWrite(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.wait == 0 {
		return sc.Run(ctx, s.rdb, keys, args...)
	}
	var cmd *redis.Cmd
	err := s.write(ctx, keys[0], func(p redis.Pipeliner) { cmd = sc.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A new master (after a failover) has not seen the script yet.
		err = s.write(ctx, keys[0], func(p redis.Pipeliner) { cmd = sc.Eval(ctx, p, keys, args...) })
	}
	if err != nil && cmd.Err() == nil {
		cmd.SetErr(err)
	}
	return cmd
}

func (s *Store) createOnce(ctx context.Context, key string, exp time.Time, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var set *redis.BoolCmd
	if err := s.write(ctx, key, func(p redis.Pipeliner) { set = p.SetNX(ctx, key, append([]byte{'0'}, data...), store.TTL(exp)) }); err != nil {
		return err
	}
	if !set.Val() {
		return store.ErrExists
	}
	return nil
}

// runRecordScript runs a script that answers {outcome, record} (nothing
// for a record that is not there: ErrNotFound) and decodes the record,
// what, into v.
func (s *Store) runRecordScript(ctx context.Context, sc *redis.Script, what string, v any, keys []string, args ...any) (int64, error) {
	res, err := s.runWrite(ctx, sc, keys, args...).Slice()
	if errors.Is(err, redis.Nil) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	n, _ := res[0].(int64)
	data, _ := res[1].(string)
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", what, err)
	}
	return n, nil
}

var swapKeysScript = redis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', v + 1, 'd', ARGV[2])
return 1
`)

// Keys implements store.Store.
func (s *Store) Keys(ctx context.Context) (*store.KeyRing, error) {
	vals, err := s.rdb.HMGet(ctx, s.key("keys"), "v", "d").Result()
	if err != nil {
		return nil, err
	}
	ring := new(store.KeyRing)
	if d, ok := vals[1].(string); ok {
		if err := json.Unmarshal([]byte(d), ring); err != nil {
			return nil, fmt.Errorf("decoding key ring: %w", err)
		}
	}
	if v, ok := vals[0].(string); ok {
		ring.Version, _ = strconv.ParseInt(v, 10, 64)
	}
	return ring, nil
}

// SwapKeys implements store.Store.
func (s *Store) SwapKeys(ctx context.Context, prev int64, ring *store.KeyRing) error {
	ring.Version = prev + 1
	data, err := json.Marshal(ring)
	if err != nil {
		return err
	}
	ok, err := s.runWrite(ctx, swapKeysScript, []string{s.key("keys")}, prev, data).Int()
	if err != nil {
		return err
	}
	if ok == 0 {
		return store.ErrConflict
	}
	return nil
}

// A code shares its grant's hash tag with the grant's refresh tokens, so
// that redeeming it and storing the first of them is one script in a Cluster.
func (s *Store) codeKey(grantID, hash string) string {
	return s.key("code", "{"+grantID+"}", hash)
}

// compactCode is how a code is kept: the grant fields under the names
// consumeScript copies into a refresh token, Unix milliseconds.
type compactCode struct {
	ClientID            string `json:"c"`
	Subject             string `json:"s"`
	Scope               string `json:"p,omitempty"`
	AuthTime            int64  `json:"t,omitempty"`
	RedirectURI         string `json:"r"`
	RedirectURIGiven    bool   `json:"rg,omitempty"`
	CodeChallenge       string `json:"cc,omitempty"`
	CodeChallengeMethod string `json:"cm,omitempty"`
	ExpiresAt           int64  `json:"e"`
	Resource            string `json:"a,omitempty"`
	Nonce               string `json:"n,omitempty"`
	// OpenID is copied as it is into the refresh state.
	OpenID *store.OpenID `json:"o,omitempty"`
}

// CreateCode implements store.Store: with its grant, in the round trip
// that writes the grant's index entries.
func (s *Store) CreateCode(ctx context.Context, c *store.AuthCode) error {
	cc := &compactCode{
		ClientID: c.ClientID, Subject: c.Subject, Scope: c.Scope, AuthTime: unixMilli(c.AuthTime),
		RedirectURI: c.RedirectURI, RedirectURIGiven: c.RedirectURIGiven, CodeChallenge: c.CodeChallenge,
		CodeChallengeMethod: c.CodeChallengeMethod, ExpiresAt: unixMilli(c.ExpiresAt), Resource: c.Resource, Nonce: c.Nonce, OpenID: c.OpenID}
	key := s.codeKey(c.GrantID, c.Hash)
	if c.Grant == nil {
		return s.createOnce(ctx, key, c.ExpiresAt, cc)
	}
	data, err := json.Marshal(cc)
	if err != nil {
		return err
	}
	created, err := s.putGrant(ctx, c.Grant, key, append([]byte{'0'}, data...), store.TTL(c.ExpiresAt))
	if err == nil && !created {
		err = store.ErrExists
	}
	return err
}

// ConsumeCode implements store.Store. A code is never redeemed twice,
// retry or not (RFC 6749 §4.1.2): consumeScript has no grace.
func (s *Store) ConsumeCode(ctx context.Context, grantID, hash, clientID string, first *store.Successor) (*store.AuthCode, error) {
	keys := append(make([]string, 0, 3), s.codeKey(grantID, hash), s.grantKey(grantID))
	args := append(make([]any, 0, 8), clientID)
	if first != nil {
		keys = append(keys, s.refreshStateKey(grantID))
		args = append(args, first.Hash, unixMilli(first.IssuedAt), unixMilli(first.ExpiresAt), first.MaxAge.Milliseconds(), first.JKT)
	} else {
		args = append(args, "", 0, 0, 0, "")
	}
	args = append(args, time.Now().UnixMilli(), store.GrantTouchInterval.Milliseconds())
	c := new(compactCode)
	n, err := s.runRecordScript(ctx, consumeScript, "authorization code", c, keys, args...)
	if err != nil {
		return nil, err
	}
	if n == 2 {
		err = store.ErrAlreadyUsed
	}
	return &store.AuthCode{Hash: hash, GrantID: grantID, ClientID: c.ClientID, Subject: c.Subject, Scope: c.Scope,
		AuthTime: fromMilli(c.AuthTime), RedirectURI: c.RedirectURI, RedirectURIGiven: c.RedirectURIGiven,
		CodeChallenge: c.CodeChallenge, CodeChallengeMethod: c.CodeChallengeMethod, ExpiresAt: fromMilli(c.ExpiresAt), Resource: c.Resource,
		Nonce: c.Nonce, OpenID: c.OpenID}, err
}

// unixMilli and fromMilli keep times in compact records; 0 is the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// A device authorization lives under its grant (tagged, so that a poll can
// store the grant's first refresh token in the same script); a second key
// maps its user code to the grant for the person's page.
func (s *Store) deviceKey(grantID string) string    { return s.key("device", "{"+grantID+"}") }
func (s *Store) userCodeKey(userCode string) string { return s.key("usercode", userCode) }

// compactDevice is how a device authorization is kept: Unix milliseconds,
// so that pollScript can compare times; the grant fields under the names
// consumeScript uses.
type compactDevice struct {
	UserCode       string        `json:"u"`
	DeviceCodeHash string        `json:"h"`
	ClientID       string        `json:"c"`
	Scope          string        `json:"p,omitempty"`
	Status         string        `json:"st"`
	Subject        string        `json:"s,omitempty"`
	AuthTime       int64         `json:"t,omitempty"`
	Interval       int64         `json:"iv"`
	LastPoll       int64         `json:"lp,omitempty"`
	ValidUntil     int64         `json:"vu"`
	ExpiresAt      int64         `json:"e"`
	Resource       string        `json:"a,omitempty"`
	OpenID         *store.OpenID `json:"o,omitempty"`
}

func compactDeviceOf(d *store.DeviceCode) *compactDevice {
	return &compactDevice{UserCode: d.UserCode, DeviceCodeHash: d.DeviceCodeHash, ClientID: d.ClientID, Scope: d.Scope,
		Status: string(d.Status), Subject: d.Subject, AuthTime: unixMilli(d.AuthTime), Interval: d.Interval.Milliseconds(),
		LastPoll: unixMilli(d.LastPoll), ValidUntil: unixMilli(d.ValidUntil), ExpiresAt: unixMilli(d.ExpiresAt), Resource: d.Resource, OpenID: d.OpenID}
}

func (c *compactDevice) expand(grantID string) *store.DeviceCode {
	return &store.DeviceCode{UserCode: c.UserCode, DeviceCodeHash: c.DeviceCodeHash, ClientID: c.ClientID, Scope: c.Scope,
		Status: store.DeviceStatus(c.Status), Subject: c.Subject, GrantID: grantID, AuthTime: fromMilli(c.AuthTime),
		Interval: time.Duration(c.Interval) * time.Millisecond, LastPoll: fromMilli(c.LastPoll),
		ValidUntil: fromMilli(c.ValidUntil), ExpiresAt: fromMilli(c.ExpiresAt), Resource: c.Resource, OpenID: c.OpenID}
}

// CreateDeviceCode implements store.Store.
func (s *Store) CreateDeviceCode(ctx context.Context, d *store.DeviceCode) error {
	data, err := json.Marshal(compactDeviceOf(d))
	if err != nil {
		return err
	}
	ucKey, key := s.userCodeKey(d.UserCode), s.deviceKey(d.GrantID)
	var set *redis.BoolCmd
	if err := s.write(ctx, ucKey, func(p redis.Pipeliner) { set = p.SetNX(ctx, ucKey, d.GrantID, store.TTL(d.ExpiresAt)) }); err != nil {
		return err
	}
	if !set.Val() {
		return store.ErrExists
	}
	return s.write(ctx, key, func(p redis.Pipeliner) { p.Set(ctx, key, data, store.TTL(d.ExpiresAt)) })
}

// device reads the device authorization with that user code, as stored
// and decoded.
func (s *Store) device(ctx context.Context, userCode string) (string, []byte, *store.DeviceCode, error) {
	grantID, err := s.rdb.Get(ctx, s.userCodeKey(userCode)).Result()
	if err == nil {
		var data []byte
		if data, err = s.rdb.Get(ctx, s.deviceKey(grantID)).Bytes(); err == nil {
			c := new(compactDevice)
			if err := json.Unmarshal(data, c); err != nil {
				return "", nil, nil, fmt.Errorf("decoding device code: %w", err)
			}
			return grantID, data, c.expand(grantID), nil
		}
	}
	if errors.Is(err, redis.Nil) {
		err = store.ErrNotFound
	}
	return "", nil, nil, err
}

// DeviceCode implements store.Store.
func (s *Store) DeviceCode(ctx context.Context, userCode string) (*store.DeviceCode, error) {
	_, _, d, err := s.device(ctx, userCode)
	return d, err
}

// casScript replaces KEYS[1] with ARGV[2] for ARGV[3] ms if it still holds
// ARGV[1]: an optimistic update in two round trips (read, then this),
// where WATCH/GET/MULTI takes three.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// UpdateDeviceCode implements store.Store with an optimistic update.
func (s *Store) UpdateDeviceCode(ctx context.Context, userCode string, fn func(*store.DeviceCode) error) (*store.DeviceCode, error) {
	for range 100 {
		grantID, old, d, err := s.device(ctx, userCode)
		if err != nil {
			return nil, err
		}
		if err := fn(d); err != nil {
			return nil, err
		}
		data, err := json.Marshal(compactDeviceOf(d))
		if err != nil {
			return nil, err
		}
		ok, err := s.runWrite(ctx, casScript, []string{s.deviceKey(grantID)}, old, data, px(d.ExpiresAt)).Int()
		if err != nil {
			return nil, err
		}
		if ok == 1 {
			return d, nil
		}
	}
	return nil, store.ErrConflict
}

// pollScript is store.DevicePoll on KEYS[1]: ARGV[1] hash, ARGV[2] client,
// ARGV[3] now (Unix ms), ARGV[4] the tolerance divisor, ARGV[5] the
// slow-down step (ms), ARGV[6] store.GrantTouchInterval (ms); on
// redemption the grant's first refresh token goes to KEYS[3] as in
// consumeScript (ARGV[7..11]: issued, expiry, maximum age, key, hash) and the use is noted on the grant's record,
// KEYS[2]. Returns {outcome, record}.
var pollScript = redis.NewScript(luaStoreRefresh + `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local d = cjson.decode(v)
if d.h ~= ARGV[1] or d.c ~= ARGV[2] then return false end
local now = tonumber(ARGV[3])
if d.st == 'redeemed' then return {'used', v} end
if now > d.vu then return {'expired', v} end
local outcome
local last = d.lp or 0
if last > 0 and now - last < d.iv - math.floor(d.iv / tonumber(ARGV[4])) then
  d.iv = d.iv + tonumber(ARGV[5])
  outcome = 'slow_down'
elseif d.st == 'approved' then
  d.st = 'redeemed'
  outcome = 'redeemed'
else
  outcome = d.st
end
d.lp = now
local out = cjson.encode(d)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
if outcome == 'redeemed' then
  if KEYS[3] then
    local e = store_refresh(KEYS[3], d, ARGV[7], ARGV[8], ARGV[9], ARGV[10], 1, ARGV[11])
    touch_grant(KEYS[2], ARGV[7], e, ARGV[6])
  else
    touch_grant(KEYS[2], now, 0, ARGV[6])
  end
end
return {outcome, out}
`)

// PollDeviceCode implements store.Store in one script.
func (s *Store) PollDeviceCode(ctx context.Context, p store.DevicePoll) (*store.DeviceCode, store.PollOutcome, error) {
	keys := []string{s.deviceKey(p.GrantID), s.grantKey(p.GrantID)}
	args := []any{p.Hash, p.ClientID, p.Now.UnixMilli(), store.PollTolerance, store.SlowDownStep.Milliseconds(), store.GrantTouchInterval.Milliseconds()}
	if p.First != nil {
		keys = append(keys, s.refreshStateKey(p.GrantID))
		args = append(args, unixMilli(p.First.IssuedAt), unixMilli(p.First.ExpiresAt), p.First.MaxAge.Milliseconds(), p.First.JKT, p.First.Hash)
	}
	res, err := s.runWrite(ctx, pollScript, keys, args...).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, "", store.ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	outcome, _ := res[0].(string)
	data, _ := res[1].(string)
	c := new(compactDevice)
	if err := json.Unmarshal([]byte(data), c); err != nil {
		return nil, "", fmt.Errorf("decoding device code: %w", err)
	}
	return c.expand(p.GrantID), store.PollOutcome(outcome), nil
}

// A grant's refresh state and the records of its tokens from before
// generations share its hash tag (and so its slot) with its codes and its
// record.
func (s *Store) refreshStateKey(grantID string) string { return s.key("rs", "{"+grantID+"}") }
func (s *Store) refreshKey(grantID, hash string) string {
	return s.key("rt", "{"+grantID+"}", hash)
}

// compactRefresh is how a grant's refresh state is kept in Redis (and a
// token from before generations, with a state byte before it): short
// names, Unix milliseconds, and nothing its key already says (the grant).
// A deployment holds one per live grant, so bytes here are megabytes
// there. The scripts write the same names.
type compactRefresh struct {
	ClientID  string        `json:"c"`
	Subject   string        `json:"s"`
	Scope     string        `json:"p,omitempty"`
	AuthTime  int64         `json:"t,omitempty"`
	IssuedAt  int64         `json:"i,omitempty"`
	ExpiresAt int64         `json:"e"`
	Resource  string        `json:"a,omitempty"`
	JKT       string        `json:"k,omitempty"`
	Gen       uint64        `json:"g,omitempty"`
	Hash      string        `json:"h,omitempty"`
	PrevHash  string        `json:"ph,omitempty"`
	RotatedAt int64         `json:"ra,omitempty"`
	OpenID    *store.OpenID `json:"o,omitempty"`
}

func (c *compactRefresh) expand(grantID string) *store.RefreshToken {
	return &store.RefreshToken{GrantID: grantID, Hash: c.Hash, Gen: c.Gen, ClientID: c.ClientID, Subject: c.Subject, Scope: c.Scope,
		AuthTime: fromMilli(c.AuthTime), IssuedAt: fromMilli(c.IssuedAt), ExpiresAt: fromMilli(c.ExpiresAt), Resource: c.Resource, JKT: c.JKT,
		PrevHash: c.PrevHash, RotatedAt: fromMilli(c.RotatedAt), OpenID: c.OpenID}
}

// RefreshToken implements store.Store: the grant's refresh state, or the
// token's own record for one from before generations.
func (s *Store) RefreshToken(ctx context.Context, grantID string, p store.Presented) (*store.RefreshToken, error) {
	key := s.refreshStateKey(grantID)
	if p.Gen == 0 {
		key = s.refreshKey(grantID, p.Hash)
	}
	v, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) || (err == nil && len(v) == 0) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	used := false
	if p.Gen == 0 {
		used, v = v[0] != '0', v[1:]
	}
	c := new(compactRefresh)
	if err := json.Unmarshal(v, c); err != nil {
		return nil, fmt.Errorf("decoding refresh token: %w", err)
	}
	t := c.expand(grantID)
	if p.Gen == 0 {
		t.Hash, t.Gen = p.Hash, 0
		if used {
			return t, store.ErrAlreadyUsed
		}
		return t, nil
	}
	if err := t.Check(p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return t, err
	}
	return t, nil
}

// RotateRefreshToken implements store.Store in one script, rotateScript.
func (s *Store) RotateRefreshToken(ctx context.Context, grantID string, p store.Presented, clientID string, next store.Successor) (*store.RefreshToken, error) {
	keys := []string{s.refreshStateKey(grantID), s.grantKey(grantID), s.refreshKey(grantID, p.Hash)}
	c := new(compactRefresh)
	n, err := s.runRecordScript(ctx, rotateScript, "refresh state", c, keys, clientID, p.Gen, p.Hash, next.Hash, unixMilli(next.IssuedAt),
		unixMilli(next.ExpiresAt), next.MaxAge.Milliseconds(), next.Grace.Milliseconds(), next.JKT,
		store.GrantTouchInterval.Milliseconds())
	if err != nil {
		return nil, err
	}
	switch n {
	case 2:
		err = store.ErrAlreadyUsed
	case 4:
		err = store.ErrKeyMismatch
	}
	return c.expand(grantID), err
}

// Revocations are a hash (kind:value → JSON) and a sorted set of the same
// fields by expiry, for pruning; both tagged to share a slot.
func (s *Store) revocationKeys() []string {
	return []string{s.key("{revocations}"), s.key("{revocations}", "exp")}
}

// revokeScript stores a revocation and announces it to every instance.
var revokeScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[2])
`)

func (s *Store) revocationChannel() string { return s.prefix + "revocations" }

var revocationsScript = redis.NewScript(`
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for i = 1, #dead, 500 do
  redis.call('HDEL', KEYS[1], unpack(dead, i, math.min(i + 499, #dead)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return redis.call('HVALS', KEYS[1])
`)

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	field := string(r.Kind) + ":" + r.Value
	err = s.runWrite(ctx, revokeScript, s.revocationKeys(), field, data, r.ExpiresAt.UnixMilli(), s.revocationChannel()).Err()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// Revocations implements store.Store.
func (s *Store) Revocations(ctx context.Context) ([]store.Revocation, error) {
	vals, err := revocationsScript.Run(ctx, s.rdb, s.revocationKeys(), time.Now().UnixMilli()).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]store.Revocation, len(vals))
	for i, v := range vals {
		if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
			return nil, fmt.Errorf("decoding revocation: %w", err)
		}
	}
	return out, nil
}

// WatchRevocations implements store.Store with pub/sub. go-redis
// reconnects and resubscribes by itself; each (re)subscription triggers a
// resync, since messages published meanwhile are lost.
func (s *Store) WatchRevocations(ctx context.Context, apply func(store.Revocation), resync func()) {
	ps := s.rdb.Subscribe(ctx, s.revocationChannel())
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					resync()
				}
			case *redis.Message:
				var r store.Revocation
				if json.Unmarshal([]byte(m.Payload), &r) == nil {
					apply(r)
				}
			}
		}
	}
}

func (s *Store) clientsKey() string { return s.key("clients") }

// PutClient implements store.Store.
func (s *Store) PutClient(ctx context.Context, c *store.Client) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	key := s.clientsKey()
	return s.write(ctx, key, func(p redis.Pipeliner) { p.HSet(ctx, key, c.ID, data) })
}

// UpdateClient implements store.Store, optimistically: the clients hash is
// watched from the read to the write, and the update run again on a fresh
// read when any client changed meanwhile.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(c *store.Client) error) error {
	key := s.clientsKey()
	update := func(tx *redis.Tx) error {
		data, err := tx.HGet(ctx, key, id).Bytes()
		if errors.Is(err, redis.Nil) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		c := new(store.Client)
		if err := json.Unmarshal(data, c); err != nil {
			return fmt.Errorf("decoding client %q: %w", id, err)
		}
		if err := fn(c); err != nil {
			return err
		}
		c.ID = id
		if data, err = json.Marshal(c); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.HSet(ctx, key, id, data); return nil })
		return err
	}
	var err error
	for range 10 {
		if err = s.rdb.Watch(ctx, update, key); !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("updating client %q: the clients kept changing: %w", id, err)
}

// Client implements store.Store.
func (s *Store) Client(ctx context.Context, id string) (*store.Client, error) {
	data, err := s.rdb.HGet(ctx, s.clientsKey(), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c := new(store.Client)
	return c, json.Unmarshal(data, c)
}

// Clients implements store.Store.
func (s *Store) Clients(ctx context.Context) ([]*store.Client, error) {
	vals, err := s.rdb.HVals(ctx, s.clientsKey()).Result()
	if err != nil {
		return nil, err
	}
	out := make([]*store.Client, len(vals))
	for i, v := range vals {
		out[i] = new(store.Client)
		if err := json.Unmarshal([]byte(v), out[i]); err != nil {
			return nil, fmt.Errorf("decoding client: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CountClients implements store.Store: the clients hash's length.
func (s *Store) CountClients(ctx context.Context) (int, error) {
	n, err := s.rdb.HLen(ctx, s.clientsKey()).Result()
	return int(n), err
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	key := s.clientsKey()
	var del *redis.IntCmd
	if err := s.write(ctx, key, func(p redis.Pipeliner) { del = p.HDel(ctx, key, id) }); err != nil {
		return err
	}
	if del.Val() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Counter implements store.Store.
func (s *Store) Counter(ctx context.Context, key string) (int64, time.Time, error) {
	k := s.key("ctr", key)
	var get *redis.StringCmd
	var ttl *redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get, ttl = p.Get(ctx, k), p.PTTL(ctx, k)
		return nil
	})
	if errors.Is(err, redis.Nil) || (err == nil && get.Err() == redis.Nil) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	n, err := get.Int64()
	if err != nil {
		return 0, time.Time{}, err
	}
	return n, time.Now().Add(ttl.Val()), nil
}

var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`)

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	ms := window.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	res, err := incrScript.Run(ctx, s.rdb, []string{s.key("ctr", key)}, ms).Int64Slice()
	if err != nil {
		return 0, time.Time{}, err
	}
	return res[0], time.Now().Add(time.Duration(res[1]) * time.Millisecond), nil
}

// A grant's record shares its hash tag with its codes and refresh tokens,
// so that the scripts redeeming them note its use. Its index entries are
// sorted sets by subject and by client (other slots), scored by the
// grant's EndsBy: a subject's members are "<grant> <client>" (grant IDs
// have no space), so that trimming it can trim the client's too.
func (s *Store) grantKey(id string) string { return s.key("grant", "{"+id+"}") }
func (s *Store) subjectGrantsKey(subject string) string {
	return s.key("grants", "sub", url.QueryEscape(subject))
}
func (s *Store) clientGrantsKey(clientID string) string {
	return s.key("grants", "client", url.QueryEscape(clientID))
}

// grantFields is a grant's record as a hash (short names, Unix ms), so
// that the token endpoint's scripts read and write its use (u) and expiry
// (e) alone.
func grantFields(g *store.Grant) []any {
	f := []any{"c", g.ClientID, "s", g.Subject, "p", g.Scope, "a", g.Resource, "l", g.Login,
		"ct", unixMilli(g.CreatedAt), "u", unixMilli(g.LastUsedAt), "e", unixMilli(g.ExpiresAt), "eb", unixMilli(g.EndsBy)}
	if g.OpenID != nil {
		o, _ := json.Marshal(g.OpenID) // strings and a bool: cannot fail
		f = append(f, "o", o)
	}
	if g.Via != "" {
		f = append(f, "v", g.Via)
	}
	if len(g.Actors) > 0 {
		x, _ := json.Marshal(g.Actors)
		f = append(f, "x", x)
	}
	return f
}

// grantOf reads a record grantFields wrote; nil for none.
func grantOf(id string, h map[string]string) *store.Grant {
	if len(h) == 0 {
		return nil
	}
	ms := func(k string) time.Time { n, _ := strconv.ParseInt(h[k], 10, 64); return fromMilli(n) }
	g := &store.Grant{ID: id, ClientID: h["c"], Subject: h["s"], Scope: h["p"], Resource: h["a"], Login: h["l"],
		CreatedAt: ms("ct"), LastUsedAt: ms("u"), ExpiresAt: ms("e"), EndsBy: ms("eb")}
	if o := h["o"]; o != "" {
		g.OpenID = new(store.OpenID)
		if json.Unmarshal([]byte(o), g.OpenID) != nil {
			g.OpenID = nil
		}
	}
	g.Via = h["v"]
	if x := h["x"]; x != "" && json.Unmarshal([]byte(x), &g.Actors) != nil {
		g.Actors = nil
	}
	return g
}

// putGrantScript writes a grant's record, KEYS[1] (ARGV[1] its expiry,
// Unix ms; ARGV[2..] its fields); with KEYS[2], only if it can first
// create the code there (ARGV[3..] then follow ARGV[2], the code's record,
// and ARGV[3] its TTL in ms). Returns 0 when the code existed.
var putGrantScript = redis.NewScript(`
local first = 2
if KEYS[2] then
  if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
  first = 4
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, first))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`)

// indexGrantScript adds ARGV[1] to the index KEYS[1] with score ARGV[2]
// (EndsBy, Unix ms), first dropping entries ended by ARGV[3] (now) and
// then, past ARGV[4] entries (0: no bound), those that end first, which
// it returns; the index expires with its last entry.
var indexGrantScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local dropped = {}
local max = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if max > 0 and n > max then
  local popped = redis.call('ZPOPMIN', KEYS[1], n - max)
  for i = 1, #popped, 2 do table.insert(dropped, popped[i]) end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return dropped
`)

// scriptCall is one script to run with its keys and arguments.
type scriptCall struct {
	sc   *redis.Script
	keys []string
	args []any
}

// runScripts runs calls that touch different slots. Without replicas to
// wait for they go in one pipeline, one round trip (go-redis splits a
// Cluster's by node); with them, each goes through runWrite, so that each
// slot's master confirms its own.
func (s *Store) runScripts(ctx context.Context, calls ...scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	if s.wait > 0 {
		for i, c := range calls {
			if cmds[i] = s.runWrite(ctx, c.sc, c.keys, c.args...); cmds[i].Err() != nil && !errors.Is(cmds[i].Err(), redis.Nil) {
				return nil, cmds[i].Err()
			}
		}
		return cmds, nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.sc.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A server that has not seen a script yet (its first use, a
		// restart, a failover): send those whole, once. Only those: the
		// others ran, and running them again would not be the same.
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
					cmds[i] = c.sc.Eval(ctx, p, c.keys, c.args...)
				}
			}
			return nil
		})
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	return cmds, nil
}

// PutGrant implements store.Store.
func (s *Store) PutGrant(ctx context.Context, g *store.Grant) error {
	_, err := s.putGrant(ctx, g, "", nil, 0)
	return err
}

// putGrant writes a grant's record, and its code (codeKey, code, TTL)
// when given, and its index entries: one round trip without replicas to
// wait for. It reports false, writing nothing, when the code existed.
func (s *Store) putGrant(ctx context.Context, g *store.Grant, codeKey string, code []byte, codeTTL time.Duration) (bool, error) {
	keys, args := []string{s.grantKey(g.ID)}, []any{unixMilli(g.ExpiresAt)}
	if codeKey != "" {
		keys, args = append(keys, codeKey), append(args, code, max(1, codeTTL.Milliseconds()))
	}
	now, ends := time.Now().UnixMilli(), unixMilli(g.EndsBy)
	cmds, err := s.runScripts(ctx,
		scriptCall{putGrantScript, keys, append(args, grantFields(g)...)},
		scriptCall{indexGrantScript, []string{s.subjectGrantsKey(g.Subject)}, []any{g.ID + " " + g.ClientID, ends, now, store.MaxGrantsPerSubject}},
		scriptCall{indexGrantScript, []string{s.clientGrantsKey(g.ClientID)}, []any{g.ID, ends, now, 0}})
	if err != nil {
		return false, err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return false, err
		}
	}
	created, _ := cmds[0].Int()
	dropped, _ := cmds[1].StringSlice()
	for _, member := range dropped {
		id, client, _ := strings.Cut(member, " ")
		ck := s.clientGrantsKey(client)
		if err := s.write(ctx, ck, func(p redis.Pipeliner) { p.ZRem(ctx, ck, id) }); err != nil {
			return false, err
		}
	}
	return created == 1, nil
}

// Grant implements store.Store.
func (s *Store) Grant(ctx context.Context, id string) (*store.Grant, error) {
	h, err := s.rdb.HGetAll(ctx, s.grantKey(id)).Result()
	if err != nil {
		return nil, err
	}
	g := grantOf(id, h)
	if g == nil {
		return nil, store.ErrNotFound
	}
	return g, nil
}

// grantsPage is how many index entries Grants reads at a time.
const grantsPage = 200

// Grants implements store.Store. It reads the index from the entries that
// end last (the newest, near enough, as grant_max_age is the same for all)
// in pages, and each page's records in one pipeline, until it has
// q.Limit or the index ends.
func (s *Store) Grants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	kind, owner, err := store.GrantIndexOf(q)
	if err != nil {
		return nil, err
	}
	key := s.clientGrantsKey(owner)
	if kind == "s" {
		key = s.subjectGrantsKey(owner)
	}
	limit := cmp.Or(q.Limit, store.MaxGrantsPerSubject)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var out []*store.Grant
	for offset := int64(0); len(out) < limit; offset += grantsPage {
		members, err := s.rdb.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{Min: "(" + now, Max: "+inf", Offset: offset, Count: grantsPage}).Result()
		if err != nil {
			return nil, err
		}
		if len(members) == 0 {
			break
		}
		page := len(members)
		if kind == "s" && q.ClientID != "" {
			// A subject's entries are "<grant> <client>": another
			// client's record is not read.
			members = slices.DeleteFunc(members, func(m string) bool { _, c, _ := strings.Cut(m, " "); return c != q.ClientID })
		}
		gets := make([]*redis.MapStringStringCmd, len(members))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range members {
				id, _, _ := strings.Cut(m, " ")
				gets[i] = p.HGetAll(ctx, s.grantKey(id))
			}
			return nil
		}); err != nil {
			return nil, err
		}
		for i, m := range members {
			id, _, _ := strings.Cut(m, " ")
			// A record gone (its entry ends with EndsBy, or DeleteGrant
			// drops it) or unused is not listed.
			if g := grantOf(id, gets[i].Val()); g != nil && !g.LastUsedAt.IsZero() {
				out = append(out, g)
			}
		}
		if page < grantsPage {
			break
		}
	}
	return store.NewestGrants(out, limit), nil
}

// addActorScript notes actor ARGV[1] on the grant record KEYS[1] (its
// field x, a JSON list) as store.WithActor does, ARGV[2] being
// store.MaxGrantActors. Returns 0 without a record.
var addActorScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('HGET', KEYS[1], 'x')
local out = {}
if v then
  for _, a in ipairs(cjson.decode(v)) do
    if a ~= ARGV[1] then table.insert(out, a) end
  end
end
table.insert(out, ARGV[1])
while #out > tonumber(ARGV[2]) do table.remove(out, 1) end
redis.call('HSET', KEYS[1], 'x', cjson.encode(out))
return 1
`)

// AddGrantActor implements store.Store.
func (s *Store) AddGrantActor(ctx context.Context, id, actor string) error {
	n, err := s.runWrite(ctx, addActorScript, []string{s.grantKey(id)}, actor, store.MaxGrantActors).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// AllowRate implements store.Store with go-redis/redis_rate: GCRA in one
// script, a round trip. Its keys are redis_rate's "rate:" and then this
// store's prefix.
func (s *Store) AllowRate(ctx context.Context, key string, n int, period time.Duration) (store.RateResult, error) {
	r, err := redis_rate.NewLimiter(s.rdb).Allow(ctx, s.prefix+key, redis_rate.Limit{Rate: n, Burst: n, Period: period})
	if err != nil {
		return store.RateResult{}, err
	}
	return store.RateResult{Allowed: r.Allowed > 0, Remaining: r.Remaining, RetryAfter: max(r.RetryAfter, 0), ResetAfter: max(r.ResetAfter, 0)}, nil
}

// DeleteGrant implements store.Store.
func (s *Store) DeleteGrant(ctx context.Context, id string) error {
	g, err := s.Grant(ctx, id)
	if err != nil {
		return err
	}
	key, sk, ck := s.grantKey(id), s.subjectGrantsKey(g.Subject), s.clientGrantsKey(g.ClientID)
	if err := s.write(ctx, sk, func(p redis.Pipeliner) { p.ZRem(ctx, sk, id+" "+g.ClientID) }); err != nil {
		return err
	}
	if err := s.write(ctx, ck, func(p redis.Pipeliner) { p.ZRem(ctx, ck, id) }); err != nil {
		return err
	}
	return s.write(ctx, key, func(p redis.Pipeliner) { p.Del(ctx, key) })
}
