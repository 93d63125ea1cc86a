package dpop

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Replay remembers the proofs an instance has accepted, for their window,
// so that one is refused the second time without a store round trip
// (RFC 9449 §11.1). It is per instance: with several instances a proof
// could be replayed once at each within the window, which server nonces
// close (see the README). It holds at most Max proofs; past that, expired
// ones go first, then arbitrary ones (a flood of fresh proofs, each of
// which costs its sender a signature, can then push out proofs still in
// their window).
type Replay struct {
	Max int

	mu   sync.Mutex
	seen map[[16]byte]int64 // hash of (jkt, jti) → until (unix seconds)
}

// DefaultReplayMax is Replay's size when Max is 0: at 16 bytes of key and
// 8 of time a proof, some 5 MB with the map's overhead, for a window's
// worth of 1,000 proofs a second.
const DefaultReplayMax = 120_000

// Seen records the proof and reports whether it was recorded before.
func (r *Replay) Seen(p *Proof, now time.Time) bool {
	sum := sha256.Sum256([]byte(p.JKT + "\x00" + p.JTI))
	var k [16]byte
	copy(k[:], sum[:])
	until := p.IssuedAt.Add(2 * Window).Unix() // past it, iat alone refuses the proof
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[[16]byte]int64{}
	}
	if t, ok := r.seen[k]; ok && t > now.Unix() {
		return true
	}
	max := r.Max
	if max == 0 {
		max = DefaultReplayMax
	}
	if len(r.seen) >= max {
		drop := max / 10
		for key, t := range r.seen {
			if t <= now.Unix() || drop > 0 {
				delete(r.seen, key)
				drop--
			}
		}
	}
	r.seen[k] = until
	return false
}

// Len is how many proofs the set holds.
func (r *Replay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}
