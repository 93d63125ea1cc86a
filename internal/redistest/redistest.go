// Package redistest gives tests a Redis server of their own: a redis-server
// started on a free loopback port, or the one REDIS_URL names. It is the one
// place that logic lives, for every package's tests and for the load
// command (Run).
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokengate/tokengate/internal/freeport"
	"github.com/tokengate/tokengate/internal/skipnote"
)

// RequireEnv, when set to 1, turns "no redis-server available" from a skip
// into a failure. CI sets it so that Redis tests can never silently vanish.
const RequireEnv = "TOKENGATE_REQUIRE_REDIS"

// Server is a Redis server for one test.
type Server struct {
	// URL is redis://host:port/db.
	URL string
	// Addr is host:port.
	Addr string

	t      testing.TB
	port   int
	dir    string
	args   []string // more redis-server arguments (cluster, replica)
	cmd    *exec.Cmd
	shared bool // from REDIS_URL: never stopped by us
}

var prefixSeq atomic.Int64

// Prefix returns a key prefix no other test in this process uses, so tests
// sharing a REDIS_URL server do not see each other's keys.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("tgtest:%d:%d:", os.Getpid(), prefixSeq.Add(1))
}

// Start returns a running Redis for the test, stopped when it ends. Without
// REDIS_URL and without redis-server on PATH the test is skipped, saying so,
// unless TOKENGATE_REQUIRE_REDIS=1, when it fails.
func Start(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		opts, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		return &Server{URL: u, Addr: opts.Addr, t: t, shared: true}
	}
	return startLocal(t)
}

// startLocal starts a redis-server of the test's own, or skips (fails with
// TOKENGATE_REQUIRE_REDIS=1) when there is none on PATH.
func startLocal(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		skipnote.Skip(t, RequireEnv, "the Redis tests", "redis-server is not on PATH", "apt-get install redis-server redis-tools, or set REDIS_URL")
	}
	s := &Server{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.URL = "redis://" + s.Addr + "/0"
	s.start()
	t.Cleanup(s.kill)
	return s
}

func freePort(t testing.TB) int {
	port, err := findPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func findPort() (int, error) { return freeport.Port() }

func (s *Server) start() {
	s.t.Helper()
	// Persistence on (AOF, fsync every write) so a Restart keeps the data,
	// as a production Redis would.
	s.startWith(redisCommand(s.port, s.dir, append([]string{"--appendonly", "yes", "--appendfsync", "always"}, s.args...)...))
}

// redisCommand is redis-server on port, with its files in dir, and args
// (later ones win).
func redisCommand(port int, dir string, args ...string) *exec.Cmd {
	return exec.Command("redis-server", append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--protected-mode", "no"}, args...)...)
}

// startWith runs cmd and waits until the server on s.Addr answers PING.
func (s *Server) startWith(cmd *exec.Cmd) {
	s.t.Helper()
	s.cmd = cmd
	if err := launch(cmd, s.Addr); err != nil {
		s.cmd = nil
		s.t.Fatal(err)
	}
}

// launch runs cmd and waits until the server on addr answers PING; it
// kills what it started when that does not come.
func launch(cmd *exec.Cmd, addr string) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Run starts a redis-server of its own for a tool that is not a test (the
// load command): on a free loopback port, its files in dir, with args
// added to its command line. It returns the server's URL and how to stop
// it.
func Run(dir string, args ...string) (url string, stop func(), err error) {
	port, err := findPort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := redisCommand(port, dir, args...)
	if err := launch(cmd, addr); err != nil {
		return "", nil, err
	}
	return "redis://" + addr + "/0", func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// Stop ends the server (a no-op for a REDIS_URL server).
func (s *Server) Stop() {
	if s.shared {
		s.t.Skip("outage tests need their own redis-server, not REDIS_URL's")
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.kill()
}

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port with the
// same data, for outage tests. Tests calling it need their own server.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Resume()
}

// RestartEmpty stops the server and starts it again on the same port with
// no data, as a Redis without persistence comes back from a restart.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Stop()
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			s.t.Fatalf("emptying the Redis data folder: %v", err)
		}
	}
	s.Resume()
}

// StartArgs is Start with more redis-server arguments (later ones win over
// the defaults, e.g. --appendonly no); always a server of the test's own.
func StartArgs(t testing.TB, args ...string) *Server {
	t.Helper()
	return startLocal(t, args...)
}

// Resume starts a stopped server again on the same port with the same data.
// Outage tests need their own server: a REDIS_URL one cannot be stopped.
func (s *Server) Resume() {
	s.t.Helper()
	if s.shared {
		s.t.Skip("outage tests need their own redis-server, not REDIS_URL's")
	}
	s.start()
}
