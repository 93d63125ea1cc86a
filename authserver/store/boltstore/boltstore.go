// Package boltstore is the embedded store: one bbolt file, for a single
// tokengate instance.
package boltstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/tokengate/tokengate/authserver/store"
)

var (
	bucketKeys     = []byte("keys")
	bucketCodes    = []byte("codes")
	bucketDevices  = []byte("device_codes")
	bucketUserCode = []byte("device_user_codes")
	// bucketRefreshState holds each grant's refresh state, under its ID.
	bucketRefreshState = []byte("refresh_state")
	// bucketRefresh holds refresh tokens from before generations, each
	// under its grant and hash, until they expire (store.RefreshStore).
	bucketRefresh  = []byte("refresh_tokens")
	bucketRevoked  = []byte("revocations")
	bucketClients  = []byte("clients")
	bucketCounters = []byte("counters")
	bucketUsers    = []byte("users")
	bucketGrants   = []byte("grants")
	// bucketGrantIndex maps "s\x00<subject>\x00<grant>" and
	// "c\x00<client>\x00<grant>" to nothing, each expiring at the grant's
	// EndsBy.
	bucketGrantIndex = []byte("grant_index")
	// bucketMeta holds counts kept with what they count: clientCount is
	// the clients bucket's size, so that counting is not a walk of it.
	bucketMeta = []byte("meta")
	// Edge sessions (session_auth) by the hash of their ID, and their
	// index: "s" site subject ID (value: created, Unix ns) and "d" site
	// sid ID, each live as long as its session.
	bucketEdgeSessions = []byte("edge_sessions")
	bucketEdgeIndex    = []byte("edge_session_index")
	clientCount        = []byte("clients")

	allBuckets = [][]byte{bucketKeys, bucketCodes, bucketDevices, bucketUserCode, bucketRefreshState, bucketRefresh,
		bucketRevoked, bucketClients, bucketCounters, bucketUsers, bucketGrants, bucketGrantIndex, bucketMeta, bucketEdgeSessions, bucketEdgeIndex}

	// droppedBuckets are of earlier versions: deleted at open. Consents
	// were kept apart from the grants they allowed; they are the grants.
	// Rotations told a used refresh token's successor, for the retry
	// grace: the refresh state holds the previous token now.
	droppedBuckets = [][]byte{[]byte("consents"), []byte("rotations")}

	keyRing    = []byte("ring")
	generation = []byte("generation")
)

// Store is a bbolt-backed store.Store.
type Store struct {
	db *bolt.DB
	// writes commits request-path writes together (group_commit.go).
	writes *groupCommit
	stop   chan struct{}
	done   chan struct{}

	// watchers get every revocation: one process owns the file, so the
	// feed is in-process.
	mu       sync.Mutex
	watchers map[int]func(store.Revocation)
	nextID   int
}

var _ store.Store = (*Store)(nil)

// Options tune a Store; the zero value is the default.
type Options struct {
	// SweepEvery is how often expired records are deleted from the file.
	// Default DefaultSweepEvery. Reads never return expired records, so
	// this only bounds the file's size.
	SweepEvery time.Duration
}

// DefaultSweepEvery is Options.SweepEvery's default.
const DefaultSweepEvery = time.Minute

// Open opens (creating if needed) the bbolt file at path. The file is locked
// while open: a second process opening it gets an error after a second
// instead of waiting forever.
func Open(path string) (*Store, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, o Options) (*Store, error) {
	if o.SweepEvery <= 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s is in use by another process, most likely another tokengate: stop it, or give this one a file of its own (store file <path>), or share state through Redis (store redis)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		for _, b := range droppedBuckets {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
		}
		// A file of an earlier version has no count yet.
		if tx.Bucket(bucketMeta).Get(clientCount) == nil {
			return setClientCount(tx, uint64(tx.Bucket(bucketClients).Stats().KeyN))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initializing %s: %w", path, err)
	}
	s := &Store{db: db, writes: &groupCommit{db: db}, stop: make(chan struct{}), done: make(chan struct{}), watchers: map[int]func(store.Revocation){}}
	go s.sweepLoop(o.SweepEvery)
	return s, nil
}

// Size is what the file holds: its records (expired ones the sweeper has
// not deleted yet included) and their bytes, keys and values. Tools
// measuring the store's growth read it; the file's own size only grows.
func (s *Store) Size(ctx context.Context) (records int, bytes int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				records++
				bytes += int64(len(k) + len(v))
				return nil
			})
		})
	})
	return records, bytes, err
}

// Close stops the sweeper and closes the file.
func (s *Store) Close() error {
	close(s.stop)
	<-s.done
	return s.db.Close()
}

// A record is stored as: expiry (unix nanoseconds, 0 = never, 8 bytes),
// use count (8 bytes), then the JSON value.
const headerLen = 16

func encode(exp time.Time, uses uint64, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, headerLen, headerLen+len(data))
	if !exp.IsZero() {
		binary.BigEndian.PutUint64(buf[0:8], uint64(exp.UnixNano()))
	}
	binary.BigEndian.PutUint64(buf[8:16], uses)
	return append(buf, data...), nil
}

// record is a decoded envelope; data aliases bolt's memory and is only
// valid inside the transaction.
type record struct {
	uses uint64
	data []byte
}

func expired(raw []byte, now time.Time) bool {
	exp := binary.BigEndian.Uint64(raw[0:8])
	return exp != 0 && int64(exp) <= now.UnixNano()
}

// get returns the live record under key, or ErrNotFound.
func get(b *bolt.Bucket, key []byte) (record, error) {
	raw := b.Get(key)
	if len(raw) < headerLen || expired(raw, time.Now()) {
		return record{}, store.ErrNotFound
	}
	return record{uses: binary.BigEndian.Uint64(raw[8:16]), data: raw[headerLen:]}, nil
}

func put(b *bolt.Bucket, key []byte, exp time.Time, uses uint64, v any) error {
	buf, err := encode(exp, uses, v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

func (s *Store) update(ctx context.Context, bucket []byte, fn func(b *bolt.Bucket) error) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) })
}

func (s *Store) updateTx(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.writes.update(fn)
}

func (s *Store) view(ctx context.Context, bucket []byte, fn func(b *bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) })
}

// getJSON reads the live record under key into v.
func (s *Store) getJSON(ctx context.Context, bucket []byte, key string, v any) error {
	return s.view(ctx, bucket, func(b *bolt.Bucket) error {
		r, err := get(b, []byte(key))
		if err != nil {
			return err
		}
		return json.Unmarshal(r.data, v)
	})
}

// consume decodes the record under key into v and, when then agrees
// (it sees v and may store what the first use gives), counts one use.
// ErrAlreadyUsed when this was not the first use: the transaction then
// rolls back, which is harmless, as the record was marked used before.
func consume(b *bolt.Bucket, key []byte, v any, then func() (use bool, err error)) error {
	r, err := get(b, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(r.data, v); err != nil {
		return err
	}
	if r.uses > 0 {
		return store.ErrAlreadyUsed
	}
	if use, err := then(); !use || err != nil {
		return err
	}
	return setUses(b, key, r.uses+1)
}

// setUses rewrites the use count of the record under key.
func setUses(b *bolt.Bucket, key []byte, uses uint64) error {
	raw := bytes.Clone(b.Get(key))
	binary.BigEndian.PutUint64(raw[8:16], uses)
	return b.Put(key, raw)
}

// grantKey is where a code or refresh token of a grant lives in its bucket.
func grantKey(grantID, hash string) []byte { return []byte(grantID + "\x00" + hash) }

// putRefreshOf stores a grant's refresh state and records that use of
// the grant.
func putRefreshOf(tx *bolt.Tx, t *store.RefreshToken) error {
	if err := put(tx.Bucket(bucketRefreshState), []byte(t.GrantID), t.ExpiresAt, 0, t); err != nil {
		return err
	}
	return touchGrant(tx, t.GrantID, t)
}

// refreshOf finds what p is presented to: the grant's refresh state or,
// for a token from before generations, the token's own record while it
// is unused (legacy). A used one is an earlier token of the grant's
// state, or of nothing now known: either way, not the current token.
func refreshOf(tx *bolt.Tx, grantID string, p store.Presented) (t *store.RefreshToken, legacy bool, err error) {
	state := func() (*store.RefreshToken, error) {
		r, err := get(tx.Bucket(bucketRefreshState), []byte(grantID))
		if err != nil {
			return nil, err
		}
		t := new(store.RefreshToken)
		return t, json.Unmarshal(r.data, t)
	}
	if p.Gen > 0 {
		t, err := state()
		return t, false, err
	}
	r, err := get(tx.Bucket(bucketRefresh), grantKey(grantID, p.Hash))
	if err != nil {
		return nil, false, err
	}
	t = new(store.RefreshToken)
	if err := json.Unmarshal(r.data, t); err != nil {
		return nil, false, err
	}
	if r.uses == 0 {
		t.Gen = 0
		return t, true, nil
	}
	if st, err := state(); err == nil {
		return st, false, nil
	} else if err != store.ErrNotFound {
		return nil, false, err
	}
	t.Gen, t.Hash = store.FirstGen, ""
	return t, false, nil
}

// touchGrant records a use of the grant (store.GrantStore): now, or the
// issue of next.
func touchGrant(tx *bolt.Tx, grantID string, next *store.RefreshToken) error {
	b := tx.Bucket(bucketGrants)
	r, err := get(b, []byte(grantID))
	if err != nil {
		return nil // no record: nothing to note
	}
	g := new(store.Grant)
	if err := json.Unmarshal(r.data, g); err != nil {
		return err
	}
	at, until := time.Now().UTC(), time.Time{}
	if next != nil {
		at, until = next.IssuedAt, next.ExpiresAt
	}
	if !g.Touch(at, until) {
		return nil
	}
	return put(b, []byte(grantID), g.ExpiresAt, 0, g)
}

// RecordUsers implements store.Store: username → removal time (zero
// while configured), as JSON.
func (s *Store) RecordUsers(ctx context.Context, names []string, now time.Time, forget time.Duration) (removed, newly []string, err error) {
	err = s.update(ctx, bucketUsers, func(b *bolt.Bucket) error {
		removed, newly = nil, nil
		configured := map[string]bool{}
		zero, _ := json.Marshal(time.Time{})
		for _, n := range names {
			configured[n] = true
			if err := b.Put([]byte(n), zero); err != nil {
				return err
			}
		}
		var drop [][]byte
		stamp, _ := json.Marshal(now)
		err := b.ForEach(func(k, v []byte) error {
			name := string(k)
			if configured[name] {
				return nil
			}
			var at time.Time
			if err := json.Unmarshal(v, &at); err != nil {
				return err
			}
			switch {
			case at.IsZero():
				newly, removed = append(newly, name), append(removed, name)
				return b.Put(k, stamp)
			case at.Add(forget).Before(now):
				drop = append(drop, bytes.Clone(k))
			default:
				removed = append(removed, name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return removed, newly, err
}

// Generation implements store.Store; it lives beside the key ring.
func (s *Store) Generation(ctx context.Context) (gen string, created bool, err error) {
	err = s.update(ctx, bucketKeys, func(b *bolt.Bucket) error {
		created = false
		if v := b.Get(generation); v != nil {
			gen = string(v)
			return nil
		}
		gen, created = store.NewGeneration(), true
		return b.Put(generation, []byte(gen))
	})
	return gen, created, err
}

// Keys implements store.Store.
func (s *Store) Keys(ctx context.Context) (*store.KeyRing, error) {
	ring := new(store.KeyRing)
	err := s.getJSON(ctx, bucketKeys, string(keyRing), ring)
	if err == store.ErrNotFound {
		return &store.KeyRing{}, nil
	}
	return ring, err
}

// SwapKeys implements store.Store.
func (s *Store) SwapKeys(ctx context.Context, prev int64, ring *store.KeyRing) error {
	return s.update(ctx, bucketKeys, func(b *bolt.Bucket) error {
		var cur store.KeyRing
		if r, err := get(b, keyRing); err == nil {
			if err := json.Unmarshal(r.data, &cur); err != nil {
				return err
			}
		}
		if cur.Version != prev {
			return store.ErrConflict
		}
		ring.Version = prev + 1
		return put(b, keyRing, time.Time{}, 0, ring)
	})
}

// CreateCode implements store.Store: with its grant, one transaction.
func (s *Store) CreateCode(ctx context.Context, c *store.AuthCode) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error {
		codes, key := tx.Bucket(bucketCodes), grantKey(c.GrantID, c.Hash)
		if _, err := get(codes, key); err == nil {
			return store.ErrExists
		}
		if err := put(codes, key, c.ExpiresAt, 0, c); err != nil {
			return err
		}
		if c.Grant == nil {
			return nil
		}
		return putGrant(tx, c.Grant)
	})
}

// ConsumeCode implements store.Store.
func (s *Store) ConsumeCode(ctx context.Context, grantID, hash, clientID string, first *store.Successor) (*store.AuthCode, error) {
	c := new(store.AuthCode)
	err := s.updateTx(ctx, func(tx *bolt.Tx) error {
		*c = store.AuthCode{}
		return consume(tx.Bucket(bucketCodes), grantKey(grantID, hash), c, func() (bool, error) {
			if c.ClientID != clientID {
				return false, nil
			}
			if first == nil {
				return true, touchGrant(tx, grantID, nil)
			}
			return true, putRefreshOf(tx, first.Of(c.GrantID, c.ClientID, c.Subject, c.Scope, c.AuthTime, c.Resource, c.OpenID))
		})
	})
	if err != nil && err != store.ErrAlreadyUsed {
		return nil, err
	}
	return c, err
}

// Device authorizations live under their grant; a second bucket maps
// each live user code to its grant.

// CreateDeviceCode implements store.Store.
func (s *Store) CreateDeviceCode(ctx context.Context, d *store.DeviceCode) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error {
		codes := tx.Bucket(bucketUserCode)
		if _, err := get(codes, []byte(d.UserCode)); err == nil {
			return store.ErrExists
		}
		if err := put(codes, []byte(d.UserCode), d.ExpiresAt, 0, d.GrantID); err != nil {
			return err
		}
		return put(tx.Bucket(bucketDevices), []byte(d.GrantID), d.ExpiresAt, 0, d)
	})
}

// deviceByUserCode finds the live device authorization with that user code.
func deviceByUserCode(tx *bolt.Tx, userCode string, d *store.DeviceCode) error {
	r, err := get(tx.Bucket(bucketUserCode), []byte(userCode))
	if err != nil {
		return err
	}
	var grantID string
	if err := json.Unmarshal(r.data, &grantID); err != nil {
		return err
	}
	if r, err = get(tx.Bucket(bucketDevices), []byte(grantID)); err != nil {
		return err
	}
	return json.Unmarshal(r.data, d)
}

// DeviceCode implements store.Store.
func (s *Store) DeviceCode(ctx context.Context, userCode string) (*store.DeviceCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := new(store.DeviceCode)
	if err := s.db.View(func(tx *bolt.Tx) error { return deviceByUserCode(tx, userCode, d) }); err != nil {
		return nil, err
	}
	return d, nil
}

// UpdateDeviceCode implements store.Store.
func (s *Store) UpdateDeviceCode(ctx context.Context, userCode string, fn func(*store.DeviceCode) error) (*store.DeviceCode, error) {
	d := new(store.DeviceCode)
	err := s.updateTx(ctx, func(tx *bolt.Tx) error {
		*d = store.DeviceCode{}
		if err := deviceByUserCode(tx, userCode, d); err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
		return put(tx.Bucket(bucketDevices), []byte(d.GrantID), d.ExpiresAt, 0, d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// PollDeviceCode implements store.Store.
func (s *Store) PollDeviceCode(ctx context.Context, p store.DevicePoll) (*store.DeviceCode, store.PollOutcome, error) {
	d := new(store.DeviceCode)
	var outcome store.PollOutcome
	err := s.updateTx(ctx, func(tx *bolt.Tx) error {
		*d, outcome = store.DeviceCode{}, ""
		devices := tx.Bucket(bucketDevices)
		r, err := get(devices, []byte(p.GrantID))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(r.data, d); err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(p.Hash), []byte(d.DeviceCodeHash)) != 1 || d.ClientID != p.ClientID {
			return store.ErrNotFound
		}
		switch {
		case d.Status == store.DeviceRedeemed:
			outcome = store.PollUsed
			return nil
		case p.Now.After(d.ValidUntil):
			outcome = store.PollExpired
			return nil
		case store.TooSoon(p.Now, d.LastPoll, d.Interval):
			d.Interval += store.SlowDownStep
			outcome = store.PollSlowDown
		case d.Status == store.DeviceApproved:
			d.Status, outcome = store.DeviceRedeemed, store.PollRedeemed
			var err error
			if p.First != nil {
				err = putRefreshOf(tx, p.First.Of(d.GrantID, d.ClientID, d.Subject, d.Scope, d.AuthTime, d.Resource, d.OpenID))
			} else {
				err = touchGrant(tx, d.GrantID, nil)
			}
			if err != nil {
				return err
			}
		default:
			outcome = store.PollOutcome(d.Status)
		}
		d.LastPoll = p.Now
		return put(devices, []byte(d.GrantID), d.ExpiresAt, 0, d)
	})
	if err != nil {
		return nil, "", err
	}
	return d, outcome, nil
}

// RefreshToken implements store.Store.
func (s *Store) RefreshToken(ctx context.Context, grantID string, p store.Presented) (*store.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *store.RefreshToken
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if t, _, err = refreshOf(tx, grantID, p); err != nil {
			return err
		}
		return t.Check(p)
	})
	if err != nil && err != store.ErrAlreadyUsed {
		return nil, err
	}
	return t, err
}

// RotateRefreshToken implements store.Store, as store.RefreshToken's
// Rotation decides.
func (s *Store) RotateRefreshToken(ctx context.Context, grantID string, p store.Presented, clientID string, next store.Successor) (*store.RefreshToken, error) {
	var old *store.RefreshToken
	err := s.updateTx(ctx, func(tx *bolt.Tx) error {
		t, legacy, err := refreshOf(tx, grantID, p)
		if old = t; err != nil {
			return err
		}
		switch outcome := t.Rotation(p, clientID, next); outcome {
		case store.RotateCurrent, store.RotateRetry:
			if legacy {
				if err := setUses(tx.Bucket(bucketRefresh), grantKey(grantID, p.Hash), 1); err != nil {
					return err
				}
			}
			return putRefreshOf(tx, t.Rotated(p, outcome, next))
		case store.RotateUsed:
			return store.ErrAlreadyUsed
		case store.RotateWrongKey:
			return store.ErrKeyMismatch
		case store.RotateUnknown:
			return store.ErrNotFound
		}
		return nil // another client's: untouched
	})
	if err != nil && err != store.ErrAlreadyUsed && err != store.ErrKeyMismatch {
		return nil, err
	}
	return old, err
}

func revocationKey(r store.Revocation) []byte { return []byte(string(r.Kind) + "\x00" + r.Value) }

// Revoke implements store.Store. A later revocation of the same thing
// replaces the earlier one, so a client or subject cut-off only moves on.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	err := s.update(ctx, bucketRevoked, func(b *bolt.Bucket) error {
		return put(b, revocationKey(r), r.ExpiresAt, 0, r)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, apply := range s.watchers {
		apply(r)
	}
	return nil
}

// WatchRevocations implements store.Store.
func (s *Store) WatchRevocations(ctx context.Context, apply func(store.Revocation), resync func()) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = apply
	s.mu.Unlock()
	resync()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.watchers, id)
	s.mu.Unlock()
}

// Revocations implements store.Store.
func (s *Store) Revocations(ctx context.Context) ([]store.Revocation, error) {
	var out []store.Revocation
	err := s.view(ctx, bucketRevoked, func(b *bolt.Bucket) error {
		now := time.Now()
		return b.ForEach(func(k, raw []byte) error {
			if len(raw) < headerLen || expired(raw, now) {
				return nil
			}
			var r store.Revocation
			if err := json.Unmarshal(raw[headerLen:], &r); err != nil {
				return fmt.Errorf("decoding revocation: %w", err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// PutClient implements store.Store.
func (s *Store) PutClient(ctx context.Context, c *store.Client) error {
	return s.update(ctx, bucketClients, func(b *bolt.Bucket) error {
		if b.Get([]byte(c.ID)) == nil {
			if err := setClientCount(b.Tx(), readClientCount(b.Tx())+1); err != nil {
				return err
			}
		}
		return put(b, []byte(c.ID), time.Time{}, 0, c)
	})
}

func readClientCount(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(clientCount); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func setClientCount(tx *bolt.Tx, n uint64) error {
	return tx.Bucket(bucketMeta).Put(clientCount, binary.BigEndian.AppendUint64(nil, n))
}

// UpdateClient implements store.Store: read and write in one transaction.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(c *store.Client) error) error {
	return s.update(ctx, bucketClients, func(b *bolt.Bucket) error {
		rec, err := get(b, []byte(id))
		if err != nil {
			return err
		}
		c := new(store.Client)
		if err := json.Unmarshal(rec.data, c); err != nil {
			return fmt.Errorf("decoding client %q: %w", id, err)
		}
		if err := fn(c); err != nil {
			return err
		}
		c.ID = id
		return put(b, []byte(id), time.Time{}, 0, c)
	})
}

// Client implements store.Store.
func (s *Store) Client(ctx context.Context, id string) (*store.Client, error) {
	c := new(store.Client)
	if err := s.getJSON(ctx, bucketClients, id, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Clients implements store.Store.
func (s *Store) Clients(ctx context.Context) ([]*store.Client, error) {
	var out []*store.Client
	err := s.view(ctx, bucketClients, func(b *bolt.Bucket) error {
		return b.ForEach(func(k, raw []byte) error {
			c := new(store.Client)
			if err := json.Unmarshal(raw[headerLen:], c); err != nil {
				return fmt.Errorf("decoding client %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// CountClients implements store.Store: the count PutClient and
// DeleteClient keep beside the clients, read in constant time.
func (s *Store) CountClients(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, bucketClients, func(b *bolt.Bucket) error {
		n = int(readClientCount(b.Tx()))
		return nil
	})
	return n, err
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.update(ctx, bucketClients, func(b *bolt.Bucket) error {
		if b.Get([]byte(id)) == nil {
			return store.ErrNotFound
		}
		if n := readClientCount(b.Tx()); n > 0 {
			if err := setClientCount(b.Tx(), n-1); err != nil {
				return err
			}
		}
		return b.Delete([]byte(id))
	})
}

func grantIndexKey(kind, owner, grantID string) []byte {
	return []byte(kind + "\x00" + owner + "\x00" + grantID)
}

// PutGrant implements store.Store.
func (s *Store) PutGrant(ctx context.Context, g *store.Grant) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error { return putGrant(tx, g) })
}

// putGrant records g and its index entries in tx.
func putGrant(tx *bolt.Tx, g *store.Grant) error {
	idx := tx.Bucket(bucketGrantIndex)
	if err := put(tx.Bucket(bucketGrants), []byte(g.ID), g.ExpiresAt, 0, g); err != nil {
		return err
	}
	// The subject's entry names the client, whose entry goes with it.
	if err := put(idx, grantIndexKey("s", g.Subject, g.ID), g.EndsBy, 0, g.ClientID); err != nil {
		return err
	}
	if err := put(idx, grantIndexKey("c", g.ClientID, g.ID), g.EndsBy, 0, nil); err != nil {
		return err
	}
	// Past the bound, the subject's grants that end first go.
	entries := indexEntries(idx, "s", g.Subject)
	if len(entries) <= store.MaxGrantsPerSubject {
		return nil
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].endsBy < entries[j].endsBy })
	for _, e := range entries[:len(entries)-store.MaxGrantsPerSubject] {
		var client string
		if json.Unmarshal(e.value, &client) == nil {
			if err := idx.Delete(grantIndexKey("c", client, e.grant)); err != nil {
				return err
			}
		}
		if err := idx.Delete(grantIndexKey("s", g.Subject, e.grant)); err != nil {
			return err
		}
	}
	return nil
}

// indexEntry is one live grant index entry.
type indexEntry struct {
	grant  string
	endsBy uint64
	// value is the entry's JSON (a subject's entry: the client ID),
	// valid inside the transaction.
	value []byte
}

// indexEntries lists the live index entries of kind ("s" or "c") for owner.
func indexEntries(idx *bolt.Bucket, kind, owner string) []indexEntry {
	var out []indexEntry
	prefix := grantIndexKey(kind, owner, "")
	now := time.Now()
	c := idx.Cursor()
	for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
		if len(raw) >= headerLen && !expired(raw, now) {
			out = append(out, indexEntry{string(k[len(prefix):]), binary.BigEndian.Uint64(raw[0:8]), raw[headerLen:]})
		}
	}
	return out
}

// Grant implements store.Store.
func (s *Store) Grant(ctx context.Context, id string) (*store.Grant, error) {
	g := new(store.Grant)
	if err := s.getJSON(ctx, bucketGrants, id, g); err != nil {
		return nil, err
	}
	return g, nil
}

// Grants implements store.Store.
func (s *Store) Grants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	kind, owner, err := store.GrantIndexOf(q)
	if err != nil {
		return nil, err
	}
	var out []*store.Grant
	err = s.view(ctx, bucketGrantIndex, func(idx *bolt.Bucket) error {
		grants := idx.Tx().Bucket(bucketGrants)
		client, _ := json.Marshal(q.ClientID)
		for _, e := range indexEntries(idx, kind, owner) {
			if kind == "s" && q.ClientID != "" && !bytes.Equal(e.value, client) {
				continue // another client's: its record is not read
			}
			r, err := get(grants, []byte(e.grant))
			if err != nil {
				continue // gone: the sweep drops its entries in time
			}
			g := new(store.Grant)
			if err := json.Unmarshal(r.data, g); err != nil {
				return err
			}
			if !g.LastUsedAt.IsZero() {
				out = append(out, g)
			}
		}
		return nil
	})
	return store.NewestGrants(out, q.Limit), err
}

// DeleteGrant implements store.Store.
func (s *Store) DeleteGrant(ctx context.Context, id string) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGrants)
		r, err := get(b, []byte(id))
		if err != nil {
			return err
		}
		var g store.Grant
		if err := json.Unmarshal(r.data, &g); err != nil {
			return err
		}
		idx := tx.Bucket(bucketGrantIndex)
		for _, k := range [][]byte{grantIndexKey("s", g.Subject, id), grantIndexKey("c", g.ClientID, id)} {
			if err := idx.Delete(k); err != nil {
				return err
			}
		}
		return b.Delete([]byte(id))
	})
}

// AddGrantActor implements store.Store.
func (s *Store) AddGrantActor(ctx context.Context, id, actor string) error {
	return s.updateTx(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGrants)
		r, err := get(b, []byte(id))
		if err != nil {
			return err
		}
		g := new(store.Grant)
		if err := json.Unmarshal(r.data, g); err != nil {
			return err
		}
		g.Actors = store.WithActor(g.Actors, actor)
		return put(b, []byte(id), g.ExpiresAt, 0, g)
	})
}

// Incr implements store.Store.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	var n int64
	var exp time.Time
	err := s.update(ctx, bucketCounters, func(b *bolt.Bucket) error {
		n, exp = 0, time.Now().Add(window)
		if r, err := get(b, []byte(key)); err == nil {
			n = int64(r.uses)
			exp = time.Unix(0, int64(binary.BigEndian.Uint64(b.Get([]byte(key))[0:8])))
		}
		n++
		return put(b, []byte(key), exp, uint64(n), nil)
	})
	return n, exp, err
}

// AllowRate implements store.Store: the budget's theoretical arrival
// time (Unix ns) kept as a counter record until it passes.
func (s *Store) AllowRate(ctx context.Context, key string, n int, period time.Duration) (store.RateResult, error) {
	var res store.RateResult
	err := s.update(ctx, bucketCounters, func(b *bolt.Bucket) error {
		now := time.Now()
		var tat time.Time
		if r, err := get(b, []byte(key)); err == nil {
			tat = time.Unix(0, int64(r.uses))
		}
		var next time.Time
		res, next = store.GCRA(tat, now, n, period)
		if !res.Allowed {
			return nil
		}
		return put(b, []byte(key), next, uint64(next.UnixNano()), nil)
	})
	return res, err
}

// Counter implements store.Store.
func (s *Store) Counter(ctx context.Context, key string) (int64, time.Time, error) {
	var n int64
	var exp time.Time
	err := s.view(ctx, bucketCounters, func(b *bolt.Bucket) error {
		if r, err := get(b, []byte(key)); err == nil {
			n = int64(r.uses)
			exp = time.Unix(0, int64(binary.BigEndian.Uint64(b.Get([]byte(key))[0:8])))
		}
		return nil
	})
	return n, exp, err
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep deletes expired records. Errors are ignored: the next sweep retries
// and reads never see expired records anyway.
func (s *Store) sweep() {
	now := time.Now()
	_ = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			b := tx.Bucket(name)
			var dead [][]byte
			_ = b.ForEach(func(k, raw []byte) error {
				if len(raw) >= headerLen && expired(raw, now) {
					dead = append(dead, bytes.Clone(k))
				}
				return nil
			})
			for _, k := range dead {
				_ = b.Delete(k)
			}
		}
		return nil
	})
}
