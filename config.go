package mtcp

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/migratory/mtcp/pool"
)

// Defaults used where a Config or Dialer field is zero.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultDetachTimeout    = 60 * time.Second
	// DefaultFirstDetachTimeout is the Dialer's default resume timeout: a
	// client that never came back within it gave up.
	DefaultFirstDetachTimeout = 30 * time.Second
	DefaultSessionMemory      = 1 << 30
	DefaultResumeTimeout      = 30 * time.Second
	DefaultKeepAlive          = 1 * time.Second
	DefaultKeepAliveTimeout   = 4 * time.Second
	DefaultIdleProbe          = 30 * time.Second
	DefaultWindow             = 2 << 20
	DefaultRetention          = 4 << 20
	DefaultMaxSessions        = 100_000
	DefaultMaxHandshakes      = 256
	DefaultAcceptBacklog      = 128
	DefaultSettleTimeout      = 2 * time.Second
)

// Bounds the server puts on what a client asks for.
const (
	minKeepAlive  = 10 * time.Millisecond
	maxKeepAlive  = 60 * time.Second
	minBufferSize = 4 << 10
	maxBufferSize = 1 << 30
)

// Config configures a Listener. The zero value (or a nil *Config) is a
// standalone server with safe defaults.
type Config struct {
	// TLS, if set, makes the listener serve TLS; mtcp detection happens
	// inside TLS, so plain TLS clients are served as plain connections.
	TLS *tls.Config

	// Logger receives the listener's and its sessions' events. Nil is silent.
	Logger *slog.Logger

	// Metrics receives counts and pauses of the listener's sessions (nil:
	// none). See package prom for Prometheus.
	Metrics Metrics

	// HandshakeTimeout bounds a new connection's TLS and mtcp handshakes,
	// from its accept: a connection that has not shown by then what it is
	// (an mtcp client sends its preface first, a plain client anything
	// else) is closed. A resume's PROOF is awaited at most a third of it
	// after its CHALLENGE went out.
	HandshakeTimeout time.Duration

	// FirstByteTimeout, if positive, serves as a plain connection a client
	// that has not sent the whole mtcp preface that long after it was
	// accepted: set it for protocols in which the server speaks first
	// (SMTP, SSH, MySQL banners), a little above the clients' round-trip
	// time. An mtcp client slower than that (a long path, a busy machine)
	// is then served as plain too. Zero (the default) classifies only by
	// the first bytes: a silent client is closed at the HandshakeTimeout,
	// and while silent it is among the handshakes that MaxHandshakes may
	// evict. See spec.md, section 8.
	FirstByteTimeout time.Duration

	// RejectPlain closes connections from clients that do not speak mtcp
	// instead of serving them as plain connections.
	RejectPlain bool

	// DetachTimeout is how long a session whose client is gone is kept,
	// waiting for the client to resume, before it is freed.
	// FirstDetachTimeout is the same for a session whose client never
	// resumed it (at most DetachTimeout): clients that vanish right after
	// opening a session free its memory sooner.
	DetachTimeout      time.Duration
	FirstDetachTimeout time.Duration

	// SessionMemory bounds the memory of all the listener's session
	// buffers (input waiting for the application, output kept until the
	// client has it); a negative value means no bound. When output would
	// pass it, the sessions whose clients are away are dropped, those
	// holding the most first (their clients, if they come back, get
	// ErrEvicted; in a pool with replicas another member takes them over
	// from their checkpoints); while none is away, Write waits for memory.
	SessionMemory int

	// Window is the bytes of a session's input buffered for the application
	// (the client's flow-control window). Retention is the bytes of a
	// session's output kept until the client has them; Write blocks when it
	// is full. Per-session memory is at most Window + Retention.
	Window    int
	Retention int

	// IdleProbe is how long a link of a session with nothing to
	// acknowledge stays quiet before the server sends a PING on it (at
	// least the client's KeepAlive). The client probes on its own, by its
	// Dialer's IdleProbe. A path that dies while a session is idle is found
	// dead within IdleProbe + KeepAliveTimeout; one that dies while data
	// awaits acknowledgement within KeepAliveTimeout.
	IdleProbe time.Duration

	// MaxSessions caps the sessions held (attached or detached); new
	// sessions, and sessions moving in from other members, beyond it are
	// refused with ErrBusy.
	MaxSessions int

	// MaxHandshakes caps connections in their handshake at once: when it
	// is reached, the oldest one that has not proven itself yet (sent
	// nothing that tells what it is, or a resume whose proof is not
	// checked yet) is closed to make room once it has waited for its
	// peer over 20 ms for its preface and HELLO, or 100 ms for its PROOF;
	// further connections wait in the kernel's accept queue meanwhile.
	MaxHandshakes int

	// AcceptBacklog is how many new connections may wait for Accept.
	AcceptBacklog int

	// Pool membership. An empty Gossip means a standalone server.

	// NodeName names this member; it must be unique in the pool (default:
	// the host name and the listener's port).
	NodeName string
	// Gossip is the ip:port the pool's gossip binds (port 0 picks one).
	Gossip string
	// Join lists gossip addresses of members to join; empty starts a pool.
	Join []string
	// PoolKey is the secret shared by the members (at least 16 bytes,
	// required in a pool): gossip and control-plane traffic are
	// encrypted and authenticated with keys derived from it.
	PoolKey []byte
	// Replicas is how many other members keep a copy of each checkpoint, so
	// that sessions survive the crash of their member. 0 means moves by
	// handover only. NewPoolConfig sets DefaultReplicas. A checkpoint is
	// durable (its client frees the input before it) only once all its
	// copies are confirmed; a session whose copies cannot be had (fewer
	// other members than Replicas, or members that refuse them) keeps its
	// client's input until the client's retention fills up, then goes on
	// without being crash-safe, and says so: SessionStatus.AtRisk,
	// Status.AtRisk and a warning in the log.
	Replicas int
	// Control is the ip:port of the control plane between members
	// (default: the gossip ip, a free port).
	Control string
	// Advertise is the address clients are told to reach this member at
	// (default: the listener's address).
	Advertise string
	// PoolProfile picks gossip and failure-detection timings (default LAN;
	// pool.ProfileLocal suits a pool on one machine).
	PoolProfile pool.Profile
	// Balance, if set, makes the member ask clients to move when it holds
	// more than its share of the pool's sessions (shares in proportion to
	// how fast each member serves its sessions).
	Balance *Balance
	// SettleTimeout bounds how long a move that nobody is forced to make
	// now (Drain, Balance, a server's Migrate) waits for the session to
	// sit at a checkpoint boundary (its newest checkpoint covers all its
	// application read and wrote) before it asks the client to go: the
	// application is held there while the client moves, and the successor
	// restores that checkpoint with nothing to regenerate and no input
	// read twice. Past it, the client is asked to go as things are, and the
	// successor regenerates the output after the checkpoint it restores.
	// Zero means DefaultSettleTimeout; a negative value does not wait.
	// Moves forced by failure never wait.
	SettleTimeout time.Duration
	// ReplicaMemory bounds the application state this member keeps in
	// copies of other members' checkpoints (default 1 GiB); beyond it,
	// copies are refused and the sessions concerned wait for other replicas.
	ReplicaMemory int
}

// DefaultReplicas is the number of checkpoint copies NewPoolConfig asks for.
const DefaultReplicas = 1

// NewPoolConfig returns the Config of a pool member with the pool defaults:
// name, gossip address, pool key, members to join, and DefaultReplicas.
func NewPoolConfig(name, gossip string, poolKey []byte, join ...string) *Config {
	return &Config{NodeName: name, Gossip: gossip, PoolKey: poolKey, Join: join, Replicas: DefaultReplicas}
}

// inPool reports whether the configuration makes a pool member.
func (c *Config) inPool() bool { return c.Gossip != "" }

// withDefaults returns a copy of c (nil allowed) with zero fields filled.
func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Metrics == nil {
		out.Metrics = noMetrics{}
	}
	setDefault(&out.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&out.DetachTimeout, DefaultDetachTimeout)
	setDefault(&out.FirstDetachTimeout, min(DefaultFirstDetachTimeout, out.DetachTimeout))
	out.FirstDetachTimeout = min(out.FirstDetachTimeout, out.DetachTimeout)
	if out.SessionMemory == 0 {
		out.SessionMemory = DefaultSessionMemory
	}
	setDefault(&out.Window, DefaultWindow)
	setDefault(&out.Retention, DefaultRetention)
	setDefault(&out.MaxSessions, DefaultMaxSessions)
	setDefault(&out.MaxHandshakes, DefaultMaxHandshakes)
	setDefault(&out.AcceptBacklog, DefaultAcceptBacklog)
	setDefault(&out.ReplicaMemory, 1<<30)
	setDefault(&out.IdleProbe, DefaultIdleProbe)
	if out.SettleTimeout == 0 {
		out.SettleTimeout = DefaultSettleTimeout
	}
	out.Window = clamp(out.Window, minBufferSize, maxBufferSize)
	out.Retention = clamp(out.Retention, minBufferSize, maxBufferSize)
	return out
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func clamp[T int | time.Duration](v, lo, hi T) T {
	return min(max(v, lo), hi)
}

// Balance configures a member that asks clients to move when the pool is
// unevenly loaded (Config.Balance). Zero fields take defaults.
type Balance = pool.Balance
