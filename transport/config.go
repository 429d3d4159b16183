package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
	"unicode/utf8"
)

// Limits and defaults of Config.
const (
	// MinKeyLen is the shortest pool key accepted.
	MinKeyLen = 16
	// MaxNameLen is the longest NodeName (it travels with a one-byte length).
	MaxNameLen = 255
	// MaxKindLen is the longest request kind.
	MaxKindLen = 255
	// MinMessage and MaxMessageLimit bound Config.MaxMessage.
	MinMessage      = 1 << 10
	MaxMessageLimit = 1 << 30

	DefaultMaxMessage       = 16 << 20
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultCallTimeout      = 10 * time.Second
	DefaultMaxConns         = 256
	DefaultMaxHandshakes    = 256
	DefaultIdleTimeout      = 60 * time.Second
	DefaultMaxIdlePerAddr   = 4
	DefaultMaxConnsPerAddr  = 64
)

// Config configures a Server or a Client. The zero value of every field but
// Key means its default; Key is required.
type Config struct {
	// NodeName is this member's name, sent in the handshake; a server's
	// handlers see the caller's as their from argument. At most 255 bytes
	// of UTF-8.
	NodeName string
	// Key is the pool key shared by all members (at least MinKeyLen bytes,
	// else ErrNoKey). It is copied.
	Key []byte
	// Logger receives connection-level events (failed handshakes, dropped
	// peers). Nil: silent.
	Logger *slog.Logger
	// MaxMessage is the largest encoded request or response this end sends
	// or accepts, in bytes (default 16 MiB, at least 1 KiB, at most 1 GiB).
	// Each end announces its own in the handshake, and a sender respects the
	// smaller of the two.
	MaxMessage int
	// HandshakeTimeout bounds dialing plus the handshake (default 5 s). A
	// Server gives a connection this long, from its accept, to prove the
	// pool key; a connection that has not is closed. Bytes that trickle in
	// do not extend it.
	HandshakeTimeout time.Duration
	// CallTimeout is a Call's timeout when its context has no deadline, and
	// bounds a server's write of a response (default 10 s).
	CallTimeout time.Duration
	// MaxConns is the number of authenticated inbound connections a Server
	// serves at once (default 256). A connection that proves the pool key
	// while MaxConns others are served is answered busy (its request
	// unread; see the package doc) and closed; a Client then sends the
	// request again on a new connection, until the call's deadline.
	// Connections in their handshake never count against MaxConns, and
	// never push out an authenticated one.
	MaxConns int
	// MaxHandshakes is the number of inbound connections a Server keeps in
	// their handshake at once (default 256): connections that have not yet
	// proved the pool key, which anyone who reaches the port can open. When
	// a connection arrives while MaxHandshakes are in their handshake, the
	// one there longest is closed to make room (answered busy if it already
	// has the server's hello, so that a member it belongs to sends its
	// request again). A silent or stalling peer thus holds a slot only until
	// MaxHandshakes newer connections arrive, and honest handshakes, which
	// take one round trip, get through a flood. Each costs at most a
	// goroutine, a 4 KiB read buffer and its socket; with the connections
	// being closed, at most twice MaxHandshakes exist at once, and the
	// Server stops accepting while they do.
	MaxHandshakes int
	// IdleTimeout: a Server closes an inbound connection that carries no
	// request for this long; a Client closes a pooled connection idle for
	// half of it, so that with equal settings the client always closes first
	// (default 60 s).
	IdleTimeout time.Duration
	// MaxIdlePerAddr is the number of idle connections a Client keeps per
	// address (default 4).
	MaxIdlePerAddr int
	// MaxConnsPerAddr is the number of calls a Client has under way to one
	// address at once, each on a connection of its own (default 64). A call
	// that finds them all under way waits, within its context, for one to
	// end and takes its connection, instead of opening (and authenticating)
	// another: a burst of calls reuses a bounded set of connections, and a
	// member's bursts do not flood another's handshakes or MaxConns.
	MaxConnsPerAddr int
	// Dial, if set, replaces the Client's TCP dial (for tests, proxies or
	// in-memory networks). It must honour ctx.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// withDefaults validates cfg and returns a copy with every default filled in.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Key) < MinKeyLen {
		return cfg, ErrNoKey
	}
	cfg.Key = append([]byte(nil), cfg.Key...)
	if len(cfg.NodeName) > MaxNameLen || !utf8.ValidString(cfg.NodeName) {
		return cfg, fmt.Errorf("transport: NodeName must be at most %d bytes of UTF-8", MaxNameLen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MaxMessage < MinMessage || cfg.MaxMessage > MaxMessageLimit {
		return cfg, fmt.Errorf("transport: MaxMessage %d out of range [%d, %d]",
			cfg.MaxMessage, MinMessage, MaxMessageLimit)
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
		n   string
	}{
		{&cfg.HandshakeTimeout, DefaultHandshakeTimeout, "HandshakeTimeout"},
		{&cfg.CallTimeout, DefaultCallTimeout, "CallTimeout"},
		{&cfg.IdleTimeout, DefaultIdleTimeout, "IdleTimeout"},
	} {
		if *d.p == 0 {
			*d.p = d.def
		}
		if *d.p < 0 {
			return cfg, fmt.Errorf("transport: negative %s", d.n)
		}
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxIdlePerAddr == 0 {
		cfg.MaxIdlePerAddr = DefaultMaxIdlePerAddr
	}
	if cfg.MaxConnsPerAddr == 0 {
		cfg.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.MaxConns < 0 || cfg.MaxHandshakes < 0 || cfg.MaxIdlePerAddr < 0 || cfg.MaxConnsPerAddr < 0 {
		return cfg, fmt.Errorf("transport: negative MaxConns, MaxHandshakes, MaxIdlePerAddr or MaxConnsPerAddr")
	}
	return cfg, nil
}
