package pool

import (
	"crypto/hkdf"
	"crypto/sha256"

	"github.com/hashicorp/memberlist"

	"github.com/migratory/mtcp/transport"
)

// MinKeyLen is the shortest pool key New accepts: the control plane's
// (transport.MinKeyLen), which the same key authenticates.
const MinKeyLen = transport.MinKeyLen

// gossipKeyInfo separates the gossip key from other keys derived from the
// same pool key.
const gossipKeyInfo = "mtcp pool gossip v1"

// gossipKey derives the 32-byte AES-256-GCM key memberlist encrypts and
// authenticates gossip with.
func gossipKey(poolKey []byte) ([]byte, error) {
	if len(poolKey) < MinKeyLen {
		return nil, ErrNoKey
	}
	return hkdf.Key(sha256.New, poolKey, nil, gossipKeyInfo, 32)
}

// gossipKeyring returns a keyring holding only the derived gossip key.
func gossipKeyring(poolKey []byte) (*memberlist.Keyring, error) {
	k, err := gossipKey(poolKey)
	if err != nil {
		return nil, err
	}
	return memberlist.NewKeyring(nil, k)
}
