package mtcp

import (
	"fmt"
	"unicode/utf8"

	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
)

// ConfigError says which Config field is wrong and why. Listen and
// NewListener return it (after Verify); it matches ErrInvalidConfig with
// errors.Is.
type ConfigError struct {
	Field   string // the Config field, as named in Go
	Problem string // what is wrong with it
}

// Error says which field is wrong and why.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("mtcp: invalid config: %s %s", e.Field, e.Problem)
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Verify checks c (nil is the standalone default and is valid) without
// changing it: durations and sizes must not be negative (zero takes the
// default; SessionMemory alone may be negative, for no bound), and the
// fields of pool membership must not be set without Gossip, where they
// would be silently ignored; names and addresses must fit the frames that
// carry them (NodeName 64 bytes, Advertise 255); in a pool, PoolKey must
// be long enough. Listen and NewListener call it and return its
// *ConfigError.
func (c *Config) Verify() error {
	if c == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		neg  bool
	}{
		{"HandshakeTimeout", c.HandshakeTimeout < 0},
		{"FirstByteTimeout", c.FirstByteTimeout < 0},
		{"DetachTimeout", c.DetachTimeout < 0},
		{"FirstDetachTimeout", c.FirstDetachTimeout < 0},
		{"IdleProbe", c.IdleProbe < 0},
		{"Window", c.Window < 0},
		{"Retention", c.Retention < 0},
		{"MaxSessions", c.MaxSessions < 0},
		{"MaxHandshakes", c.MaxHandshakes < 0},
		{"AcceptBacklog", c.AcceptBacklog < 0},
		{"Replicas", c.Replicas < 0},
		{"ReplicaMemory", c.ReplicaMemory < 0},
	} {
		if f.neg {
			return &ConfigError{Field: f.name, Problem: "is negative (zero takes the default)"}
		}
	}
	if len(c.NodeName) > wire.MaxNameLen || !utf8.ValidString(c.NodeName) {
		return &ConfigError{Field: "NodeName", Problem: fmt.Sprintf("must be valid UTF-8 of at most %d bytes (has %d)", wire.MaxNameLen, len(c.NodeName))}
	}
	if len(c.Advertise) > wire.MaxAddrLen || !utf8.ValidString(c.Advertise) {
		return &ConfigError{Field: "Advertise", Problem: fmt.Sprintf("must be valid UTF-8 of at most %d bytes (has %d)", wire.MaxAddrLen, len(c.Advertise))}
	}
	if c.inPool() {
		if len(c.PoolKey) < pool.MinKeyLen {
			return &ConfigError{Field: "PoolKey", Problem: fmt.Sprintf("has %d bytes; a pool needs at least %d", len(c.PoolKey), pool.MinKeyLen)}
		}
		return nil
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"Join", len(c.Join) > 0},
		{"PoolKey", len(c.PoolKey) > 0},
		{"Replicas", c.Replicas != 0},
		{"Control", c.Control != ""},
		{"Advertise", c.Advertise != ""},
		{"PoolProfile", c.PoolProfile != pool.ProfileLAN},
		{"Balance", c.Balance != nil},
		{"ReplicaMemory", c.ReplicaMemory != 0},
	} {
		if f.set {
			return &ConfigError{Field: f.name, Problem: "is set but Gossip is empty: it only applies to a pool member"}
		}
	}
	return nil
}
