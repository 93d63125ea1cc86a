package test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/persontest"
)

// The file store answers a refresh only once it is on disk, group commit
// or not. Killed (SIGKILL) under concurrent refresh load and started
// again, every chain's last answered refresh token still redeems (a
// rotation whose answer the kill cut off is taken back by the retry
// grace), and the token before it stays used: presenting it is reuse,
// refused.
func TestKilledUnderRefreshLoadLosesNothing(t *testing.T) {
	up := newUpstream(t)
	g := newGateway(t, Ports{Upstream: up.Addr(), Store: "store file"})
	g.start(auditCaddyfile)
	p := persontest.New("mark", markPassword)
	type chain struct{ prev, cur string }
	chains := make([]chain, 16)
	for i := range chains {
		chains[i].cur = codeFlowTokens(t, g, p).RefreshToken
	}
	var rotations atomic.Int64
	var wg sync.WaitGroup
	for i := range chains {
		wg.Go(func() {
			for {
				tok, status, _ := refresh(g, chains[i].cur)
				if status != 200 {
					return // the kill, or a failure the checks below show
				}
				chains[i].prev, chains[i].cur = chains[i].cur, tok.RefreshToken
				rotations.Add(1)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for rotations.Load() < int64(10*len(chains)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.exited
	wg.Wait()
	t.Logf("killed after %d answered rotations", rotations.Load())

	g2 := newGateway(t, g.Ports)
	g2.start(auditCaddyfile)
	for i, c := range chains {
		if c.prev == "" {
			t.Fatalf("chain %d never rotated before the kill", i)
		}
		if _, status, code := refresh(g2, c.cur); status != 200 {
			t.Fatalf("chain %d: its last answered refresh token was lost: %d %s", i, status, code)
		}
		if _, status, code := refresh(g2, c.prev); status != 400 || code != "invalid_grant" {
			t.Fatalf("chain %d: a used refresh token came back: %d %s", i, status, code)
		}
	}
}
