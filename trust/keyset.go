package trust

// RFC 7517 §5: a JWK Set, read key by key. A set is another party's
// document, and one key in it that tokengate cannot use (too short, off
// its curve, of an unknown type or curve, symmetric) says nothing about
// the others: refusing the whole set would blind tokengate to the good
// keys beside it, the issuer's new one among them.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tokengate/tokengate/jose"
)

// KeySet is what a JWK Set holds for tokengate: the keys it can verify
// signatures with, and why it dropped the others.
type KeySet struct {
	// Set holds the usable keys, public halves only.
	Set jwk.Set
	// Dropped says, one entry per key left out, which key (its kid, or
	// its place in the set) and why.
	Dropped []error
}

// ReadKeySet reads a JWK Set key by key, keeping the asymmetric signing
// keys (those with use "sig" or no use) that parse and pass jwx's checks
// (an RSA modulus of 2048 bits or more, an EC point on its curve). It
// fails only when body is not a JWK Set at all; a set with no usable key
// is the caller's to judge.
func ReadKeySet(body []byte) (*KeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Keys == nil {
		return nil, errors.New(`not a JWK Set (a JSON object with a "keys" array)`)
	}
	out := &KeySet{Set: jwk.NewSet()}
	for i, raw := range doc.Keys {
		name := fmt.Sprintf("key #%d", i)
		var hdr struct {
			Kid string `json:"kid"`
			Use string `json:"use"`
		}
		if json.Unmarshal(raw, &hdr) == nil && hdr.Kid != "" {
			name = fmt.Sprintf("key %q", hdr.Kid)
		}
		if hdr.Use != "" && hdr.Use != "sig" {
			continue // an encryption key is no signing key, and no fault
		}
		k, err := jwk.ParseKey(raw)
		if err != nil {
			out.Dropped = append(out.Dropped, fmt.Errorf("%s: %w", name, err))
			continue
		}
		pub, err := k.PublicKey() // a set that published a private key gets only its public half used
		if err == nil {
			_, err = signingAlg(pub)
		}
		if err != nil {
			out.Dropped = append(out.Dropped, fmt.Errorf("%s: %w", name, err))
			continue
		}
		_ = out.Set.AddKey(pub)
	}
	return out, nil
}

// signingAlg is the one algorithm a public JWK verifies: its alg, or the
// usual one for its type when it names none; asymmetric only, since a
// shared secret would make the "public" key set a secret.
func signingAlg(pub jwk.Key) (jwa.SignatureAlgorithm, error) {
	name := ""
	if a, ok := pub.Algorithm(); ok {
		name = a.String()
	} else {
		switch pub.KeyType().String() {
		case "RSA":
			name = "RS256"
		case "OKP":
			name = "EdDSA"
		case "EC":
			if ec, ok := pub.(jwk.ECDSAPublicKey); ok {
				crv, _ := ec.Crv()
				name = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv.String()]
			}
		}
	}
	alg, ok := jwa.LookupSignatureAlgorithm(name)
	if !ok || !slices.Contains(jose.Asymmetric, name) {
		return jwa.EmptySignatureAlgorithm(), fmt.Errorf("not an asymmetric signing key tokengate accepts (%s)", cmp.Or(name, pub.KeyType().String()))
	}
	return alg, nil
}
