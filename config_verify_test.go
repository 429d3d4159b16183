package mtcp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/migratory/mtcp/pool"
)

func TestConfigVerifyRefusesWhatWouldBeIgnoredOrWrong(t *testing.T) {
	key := []byte("0123456789abcdef")
	bad := []struct {
		field string
		cfg   Config
	}{
		{"Join", Config{Join: []string{"10.0.0.1:7946"}}},
		{"PoolKey", Config{PoolKey: key}},
		{"Replicas", Config{Replicas: 1}},
		{"Control", Config{Control: "127.0.0.1:0"}},
		{"Advertise", Config{Advertise: "example.net:443"}},
		{"PoolProfile", Config{PoolProfile: pool.ProfileLocal}},
		{"Balance", Config{Balance: &Balance{}}},
		{"ReplicaMemory", Config{ReplicaMemory: 1 << 20}},
		{"PoolKey", Config{Gossip: "127.0.0.1:0", PoolKey: key[:8]}},
		{"HandshakeTimeout", Config{HandshakeTimeout: -time.Second}},
		{"Window", Config{Window: -1}},
		{"Replicas", Config{Gossip: "127.0.0.1:0", PoolKey: key, Replicas: -1}},
		{"NodeName", Config{NodeName: strings.Repeat("m", 65)}},
		{"NodeName", Config{NodeName: "bad\xff"}},
		{"Advertise", Config{Gossip: "127.0.0.1:0", PoolKey: key, Advertise: strings.Repeat("a", 256)}},
	}
	for _, b := range bad {
		ln, err := Listen("tcp", "127.0.0.1:0", &b.cfg)
		if err == nil {
			_ = ln.Close()
			t.Errorf("%s: Listen accepted %+v", b.field, b.cfg)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) || ce.Field != b.field {
			t.Errorf("%s: Listen error %v (%T), want a *ConfigError for %s", b.field, err, err, b.field)
		}
	}
	good := []*Config{
		nil,
		{},
		{NodeName: "standalone", SessionMemory: -1, DetachTimeout: time.Minute},
		NewPoolConfig("m0", "127.0.0.1:0", key),
		{Gossip: "127.0.0.1:0", PoolKey: key, Replicas: 2, Balance: &Balance{}, PoolProfile: pool.ProfileLocal},
	}
	for i, c := range good {
		if err := c.Verify(); err != nil {
			t.Errorf("good config %d: %v", i, err)
		}
	}
}
