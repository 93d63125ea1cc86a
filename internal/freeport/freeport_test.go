package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports are free, below the ephemeral range, and never handed out twice.
func TestPorts(t *testing.T) {
	low, high := pool()
	seen := map[int]bool{}
	for range 50 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < low || p >= high || seen[p] {
			t.Fatalf("port %d: outside [%d, %d) or given twice", p, low, high)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}
