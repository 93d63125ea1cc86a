package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// NoncePeriod is how long a server nonce is current; the one before it is
// still accepted, so that a nonce handed out just before a turn works.
const NoncePeriod = 5 * time.Minute

// Nonces are server-provided DPoP nonces (RFC 9449 §8, §9) that every
// instance makes alike without a round trip: an HMAC of the period's
// number under a key the instances share. A proof must then be made after
// the server said its nonce, which closes the replay window a per-instance
// jti set leaves between instances (a proof made an hour ago, or for
// another instance, carries a stale nonce).
type Nonces struct {
	// Key is the shared key (tokengate's cookie secret); nil or short
	// makes no nonce valid (fail closed).
	Key func() []byte
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (n *Nonces) at(period int64) string {
	key := n.Key()
	if len(key) < 32 {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dpop nonce\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(period))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (n *Nonces) period() int64 {
	now := time.Now()
	if n.Now != nil {
		now = n.Now()
	}
	return now.Unix() / int64(NoncePeriod/time.Second)
}

// Current is the nonce to hand out now.
func (n *Nonces) Current() string { return n.at(n.period()) }

// Valid says whether a proof's nonce is the current one or the one before.
func (n *Nonces) Valid(nonce string) bool {
	p := n.period()
	for _, want := range []string{n.at(p), n.at(p - 1)} {
		if want != "" && subtle.ConstantTimeCompare([]byte(nonce), []byte(want)) == 1 {
			return true
		}
	}
	return false
}
