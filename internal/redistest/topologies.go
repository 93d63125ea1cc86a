package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokengate/tokengate/internal/skipnote"
)

// Cluster is a Redis Cluster of three masters (no replicas) on free
// loopback ports, for one test. REDIS_URL does not apply: a cluster is
// always the test's own.
type Cluster struct {
	// Addrs are the nodes' host:port, as a store's addresses.
	Addrs []string
	Nodes []*Server
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// redis-cli --cluster create, and waits until the cluster serves every slot.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		skipnote.Skip(t, RequireEnv, "the Redis Cluster tests", "redis-cli is not on PATH", "apt-get install redis-tools")
	}
	c := new(Cluster)
	for range 3 {
		// The cluster bus's port is its own free port too: by default it is
		// the port plus 10,000, in the ephemeral range, where an outgoing
		// connection can take it first.
		n := startLocal(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
			"--cluster-port", strconv.Itoa(freePort(t)))
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitUntil(t, "the cluster to serve every slot", func(ctx context.Context) error {
		for _, n := range c.Nodes {
			rdb := redis.NewClient(&redis.Options{Addr: n.Addr})
			info, err := rdb.ClusterInfo(ctx).Result()
			rdb.Close()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return fmt.Errorf("node %s: %s", n.Addr, strings.Fields(info)[0])
			}
		}
		return nil
	})
	return c
}

// Sentinel is one master, one replica and one sentinel watching them as
// "mymaster", for one test.
type Sentinel struct {
	// Addrs are the sentinels' host:port, as a store's addresses.
	Addrs      []string
	MasterName string
	Master     *Server
	Replica    *Server
	Sentinel   *Server
}

// StartSentinel starts the three servers and waits until the replica is in
// sync and the sentinel knows both.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{MasterName: "mymaster"}
	s.Master = startLocal(t)
	s.Replica = startLocal(t, "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.port))
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	// A sentinel rewrites its config file: it must be writable.
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor mymaster 127.0.0.1 %d 1
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
`, port, dir, s.Master.port)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.Sentinel = &Server{t: t, port: port, dir: dir, Addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.Sentinel.URL = "redis://" + s.Sentinel.Addr
	s.Sentinel.startWith(exec.Command("redis-server", conf, "--sentinel"))
	t.Cleanup(s.Sentinel.kill)
	s.Addrs = []string{s.Sentinel.Addr}

	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	defer sc.Close()
	waitUntil(t, "the replica to sync and the sentinel to see it", func(ctx context.Context) error {
		rdb := redis.NewClient(&redis.Options{Addr: s.Replica.Addr})
		info, err := rdb.Info(ctx, "replication").Result()
		rdb.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica link down")
		}
		replicas, err := sc.Replicas(ctx, s.MasterName).Result()
		if err != nil {
			return err
		}
		if len(replicas) != 1 {
			return fmt.Errorf("sentinel knows %d replicas", len(replicas))
		}
		return nil
	})
	return s
}

// MasterAddr is the master's address as the sentinel reports it.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(context.Background(), s.MasterName).Result()
	if err != nil {
		t.Fatalf("asking the sentinel for the master: %v", err)
	}
	return addr[0] + ":" + addr[1]
}

// Failover has the sentinel promote the replica and waits until it reports
// the new master and the new master accepts writes.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	old := s.MasterAddr(t)
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	defer sc.Close()
	if err := sc.Failover(context.Background(), s.MasterName).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	waitUntil(t, "the failover", func(ctx context.Context) error {
		now := s.MasterAddr(t)
		if now == old {
			return fmt.Errorf("the master is still %s", now)
		}
		rdb := redis.NewClient(&redis.Options{Addr: now})
		defer rdb.Close()
		role, err := rdb.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if role[0] != "master" {
			return fmt.Errorf("%s is %v", now, role[0])
		}
		return nil
	})
}

// waitUntil retries check for up to 30 seconds.
func waitUntil(t testing.TB, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
