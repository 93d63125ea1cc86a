// Package freeport hands out TCP ports on 127.0.0.1 for servers that tests
// (and the load command) start in another process, such as tokengate or
// redis-server, which must be told their port before they listen.
//
// A port the kernel picks for ":0" is an ephemeral one. Closed again so
// that the other process can bind it, it may meanwhile become the source
// port of any process's outgoing connection, or another test's ":0": the
// next bind then fails with "address already in use". So ports are drawn
// at random from below the ephemeral range, checked free by binding them,
// and claimed with a mark in the temporary folder, which other test
// processes running alongside (go test runs packages in parallel) respect.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// claimLife is how long a claim holds; older marks are an earlier run's.
const claimLife = 30 * time.Minute

// Port is a free port on 127.0.0.1 that no other caller, in this process
// or another one using this package, has been given in the last
// claimLife.
func Port() (int, error) {
	low, high := pool()
	for range 1000 {
		port := low + rand.IntN(high-low)
		if !claim(port) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use by something that does not claim
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free port below the ephemeral range after 1,000 tries")
}

// pool is the range ports are drawn from: the 10,000 ports below the
// kernel's ephemeral range (Linux's ip_local_port_range; 32768 where it
// cannot be read), and above 1024.
func pool() (low, high int) {
	high = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				high = n
			}
		}
	}
	return max(1025, high-10000), high
}

// claim marks port as handed out; false when a live claim holds it.
func claim(port int) bool {
	mark := filepath.Join(os.TempDir(), fmt.Sprintf("tokengate-port-%d", port))
	if fi, err := os.Stat(mark); err == nil && time.Since(fi.ModTime()) > claimLife {
		_ = os.Remove(mark)
	}
	f, err := os.OpenFile(mark, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
