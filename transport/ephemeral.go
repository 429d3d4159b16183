package transport

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// keyReuse is how long a Server uses one ephemeral X25519 key: a hello
// costs a key generation (tens of microseconds) only if none was made
// this recently, so that a flood of hellos, which anyone can send, costs
// at most 20 per second.
const keyReuse = 50 * time.Millisecond

// ephemeralKeys hands out a Server's ephemeral X25519 keys. Connections
// that share a key still get traffic keys of their own (both nonces and
// the client's key go into them), and a key is let go keyReuse after it
// was made: only the handshakes that use it keep it longer.
type ephemeralKeys struct {
	mu   sync.Mutex
	key  *ecdh.PrivateKey
	made time.Time
}

// get returns the current key, or a fresh one if it is older than
// keyReuse. A nil receiver always returns a fresh key.
func (k *ephemeralKeys) get() (*ecdh.PrivateKey, error) {
	if k == nil {
		return freshKey()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil && time.Since(k.made) < keyReuse {
		return k.key, nil
	}
	priv, err := freshKey()
	if err != nil {
		return nil, err
	}
	k.key, k.made = priv, time.Now()
	time.AfterFunc(keyReuse, func() {
		k.mu.Lock()
		if k.key == priv {
			k.key = nil
		}
		k.mu.Unlock()
	})
	return priv, nil
}

func freshKey() (*ecdh.PrivateKey, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating X25519 key: %w", err)
	}
	return priv, nil
}
