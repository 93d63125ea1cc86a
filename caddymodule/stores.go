package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/authserver/store/boltstore"
	"github.com/tokengate/tokengate/authserver/store/redisstore"
)

func init() {
	caddy.RegisterModule(FileStore{})
	caddy.RegisterModule(RedisStore{})
}

// StoreModule is a module in the oauth2.stores namespace.
type StoreModule interface {
	// Store returns the opened store; valid between Provision and Cleanup.
	Store() store.Store
	// Shared reports whether other instances may use the same store, so
	// that revocations can arrive from elsewhere.
	Shared() bool
	// Describe names the store for the start-up line: its kind and where
	// it is, with no secret.
	Describe() string
}

// Open stores are shared between the configs a reload overlaps (the new one
// provisions before the old one stops): a bbolt file can be opened once.
var stores = caddy.NewUsagePool()

type pooledStore struct{ store.Store }

func (p pooledStore) Destruct() error { return p.Close() }

// pooled is a store module's use of a shared store: both modules embed it.
type pooled struct {
	key string
	st  store.Store
}

// open takes (or starts) the use of the store under key.
func (p *pooled) open(key string, open func() (store.Store, error)) error {
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := open()
		if err != nil {
			return nil, err
		}
		return pooledStore{s}, nil
	})
	if err != nil {
		return err
	}
	p.key, p.st = key, v.(pooledStore).Store
	return nil
}

// Store implements StoreModule.
func (p *pooled) Store() store.Store { return p.st }

// Cleanup releases this config's use of the store; the last user closes it.
func (p *pooled) Cleanup() error {
	if p.key == "" {
		return nil
	}
	_, err := stores.Delete(p.key)
	return err
}

// FileStore is the embedded store: a bbolt file, for a single instance.
type FileStore struct {
	// Path of the database file. Default: tokengate/tokengate.db in
	// Caddy's data directory.
	Path string `json:"path,omitempty"`

	pooled
}

// CaddyModule returns the Caddy module information.
func (FileStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "oauth2.stores.file", New: func() caddy.Module { return new(FileStore) }}
}

// Provision opens (or shares) the file.
func (f *FileStore) Provision(caddy.Context) error {
	path := f.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "tokengate", "tokengate.db")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("store file %q: %w", path, err)
	}
	if err := f.open("file:"+abs, func() (store.Store, error) { return boltstore.Open(abs) }); err != nil {
		return fmt.Errorf("store file: %w", err)
	}
	return nil
}

// Describe implements StoreModule.
func (f *FileStore) Describe() string { return "file " + strings.TrimPrefix(f.key, "file:") }

// Shared implements StoreModule: the file is locked to one process.
func (f *FileStore) Shared() bool { return false }

// RedisStore keeps codes, refresh tokens, revocations, clients and keys in
// Redis, shared by every instance pointing at it.
type RedisStore struct {
	// Addresses of Redis: redis://[user:password@]host:port/db URLs (or
	// host:port). One is a standalone server; several are a Cluster, or
	// Sentinels when master_name is set.
	Addresses []string `json:"addresses,omitempty"`
	// MasterName is the Sentinel master's name.
	MasterName string `json:"master_name,omitempty"`
	// Prefix starts every key. Default: "tokengate:".
	Prefix string `json:"prefix,omitempty"`
	// WaitReplicas makes every write wait until that many replicas have
	// it (up to 1s), and fail otherwise, so that no token or code
	// answered as issued is lost in a failover. Default 0: do not wait.
	WaitReplicas int `json:"wait_replicas,omitempty"`

	pooled
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "oauth2.stores.redis", New: func() caddy.Module { return new(RedisStore) }}
}

// Provision connects (or shares the connection).
func (r *RedisStore) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	opts := redisstore.Options{MasterName: r.MasterName, Prefix: r.Prefix, WaitReplicas: r.WaitReplicas}
	if opts.Prefix == "" {
		opts.Prefix = "tokengate:"
	}
	for _, a := range r.Addresses {
		opts.Addresses = append(opts.Addresses, repl.ReplaceKnown(a, ""))
	}
	if len(opts.Addresses) == 0 {
		return fmt.Errorf("store redis: no address: add `address redis://host:6379/0`")
	}
	k, _ := json.Marshal(opts)
	if err := r.open("redis:"+string(k), func() (store.Store, error) { return openRedis(opts) }); err != nil {
		return fmt.Errorf("store redis: %w", err)
	}
	return nil
}

// redisReachTimeout bounds the check that Redis answers at start.
const redisReachTimeout = 5 * time.Second

// openRedis connects to Redis and checks that it answers, so that a
// server that is not running is named as such, not by the first command
// that needs it (loading the signing keys, deep in the start).
func openRedis(opts redisstore.Options) (store.Store, error) {
	s, err := redisstore.New(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisReachTimeout)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("cannot reach %s: %w; is redis-server running there?", strings.Join(redactedAddresses(opts.Addresses), ", "), err)
	}
	return s, nil
}

// redactedAddresses are Redis addresses as they may be shown: a URL's
// password masked.
func redactedAddresses(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a
		if u, err := url.Parse(a); err == nil && u.Scheme != "" {
			out[i] = u.Redacted()
		}
	}
	return out
}

// Shared implements StoreModule.
func (r *RedisStore) Shared() bool { return true }

// Describe implements StoreModule.
func (r *RedisStore) Describe() string {
	prefix := r.Prefix
	if prefix == "" {
		prefix = "tokengate:"
	}
	return "redis " + strings.Join(redactedAddresses(r.Addresses), " ") + " (prefix " + prefix + ")"
}

var (
	_ StoreModule           = (*FileStore)(nil)
	_ StoreModule           = (*RedisStore)(nil)
	_ caddy.Provisioner     = (*FileStore)(nil)
	_ caddy.CleanerUpper    = (*FileStore)(nil)
	_ caddyfile.Unmarshaler = (*FileStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
)

// UnmarshalCaddyfile sets up the store from its line in the oauth2 block:
//
//	store file [<path>]
func (f *FileStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "file"
	if d.NextArg() {
		f.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("store file takes no block, only an optional path")
	}
	return nil
}

// UnmarshalCaddyfile sets up the store from its block in the oauth2 block:
//
//	store redis [<address>...] {
//		address <url>...
//		master_name <name>
//		prefix <prefix>
//		wait_replicas <n>
//	}
func (r *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "redis"
	r.Addresses = append(r.Addresses, d.RemainingArgs()...)
	for d.NextBlock(0) {
		switch d.Val() {
		case "address":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("store redis: address needs a URL such as redis://localhost:6379/0")
			}
			r.Addresses = append(r.Addresses, args...)
		case "master_name":
			if !d.Args(&r.MasterName) {
				return d.ArgErr()
			}
		case "prefix":
			if !d.Args(&r.Prefix) {
				return d.ArgErr()
			}
			if strings.ContainsAny(r.Prefix, "{}") {
				return d.Errf("store redis: prefix %q must not contain { or }: tokengate's keys carry their own Redis Cluster hash tags", r.Prefix)
			}
		case "wait_replicas":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.Errf("store redis: wait_replicas takes one number of replicas")
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return d.Errf("store redis: wait_replicas %q is not a number of replicas (0 or more)", v)
			}
			r.WaitReplicas = n
		default:
			return unknownOption(d, "store redis", d.Val(), "address", "master_name", "prefix", "wait_replicas")
		}
	}
	if len(r.Addresses) == 0 {
		return d.Errf("store redis: no address: add `address redis://host:6379/0`")
	}
	return nil
}
