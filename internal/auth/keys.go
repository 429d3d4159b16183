package auth

import (
	"sync"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// KeyReuse is how long Keys hands out one key pair. Sessions opened with
// the same pair still get secrets of their own: the server's random session
// id salts each one. A pair is forgotten KeyReuse after it was made, so a
// secret is recoverable from a key in memory only for that long.
const KeyReuse = 50 * time.Millisecond

// maxShared bounds how many peers' shared secrets a key pair remembers:
// the peers a pair meets in its KeyReuse are usually few (one key per peer
// process), and a flood of fresh keys costs an exchange each, as without
// the cache, not memory.
const maxShared = 256

// Keys hands out ephemeral X25519 key pairs, one for up to KeyReuse, so
// that opening a session costs a key generation only when none was made
// this recently. Each pair remembers the shared secrets it computed with
// the peers' keys it met (up to maxShared), so that a peer process opening
// many sessions with one key of its own costs one exchange. The zero value
// is ready to use.
type Keys struct {
	mu   sync.Mutex
	cur  *KeyPair
	made time.Time
}

// Get returns the current key pair, or a fresh one when the current one is
// older than KeyReuse.
func (k *Keys) Get() (*KeyPair, error) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur != nil && now.Sub(k.made) < KeyReuse && !now.Before(k.made) {
		return k.cur, nil
	}
	kp, err := NewKeyPair()
	if err != nil {
		return nil, err
	}
	kp.shared = make(map[[wire.KeyLen]byte][]byte)
	k.cur, k.made = kp, now
	time.AfterFunc(KeyReuse, func() { k.forget(kp) })
	return kp, nil
}

// forget lets kp go if it is still the current pair, so that a key is not
// kept in memory past its use when no session opens after it.
func (k *Keys) forget(kp *KeyPair) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == kp {
		k.cur = nil
	}
}

// sharedCache is a key pair's memory of the X25519 results with the peer
// keys it met.
type sharedCache struct {
	mu     sync.Mutex
	shared map[[wire.KeyLen]byte][]byte // nil: the pair remembers nothing
}

func (c *sharedCache) lookup(peer [wire.KeyLen]byte) ([]byte, bool) {
	if c.shared == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	z, ok := c.shared[peer]
	return z, ok
}

func (c *sharedCache) remember(peer [wire.KeyLen]byte, z []byte) {
	if c.shared == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.shared) < maxShared {
		c.shared[peer] = z
	}
}
