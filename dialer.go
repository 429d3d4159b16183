package mtcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

// Dialer opens mtcp sessions. The zero value is ready to use.
type Dialer struct {
	// TLS, if set, runs every link of the session over TLS with this
	// configuration. ServerName defaults to the host of the dialed address.
	TLS *tls.Config

	// Logger receives the session's events (link lost, resumed, lost). Nil
	// is silent.
	Logger *slog.Logger

	// Metrics receives counts and pauses of the dialer's sessions (nil:
	// none). See package prom for Prometheus.
	Metrics Metrics

	// DialFunc replaces the dial of the underlying connections (for
	// instance with in-memory pipes in tests). Nil uses a net.Dialer
	// without kernel TCP keepalive: a session's links find dead paths
	// themselves (KeepAlive, KeepAliveTimeout, IdleProbe), and the four
	// socket options that would turn it on cost every link a system call
	// each.
	DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

	// HandshakeTimeout bounds each link's dial and handshakes.
	HandshakeTimeout time.Duration

	// ResumeTimeout is how long a session whose link broke keeps trying to
	// resume before it is lost (Read and Write then fail with a
	// *SessionLostError), counted from the link's loss. A link lost during
	// a move leaves the move, within this time, to finish as the session's
	// resume. Past it, the session still makes one attempt at its member
	// (when the move used the time up) and follows a member's redirect to
	// where the session is now (a few times at most), each within the
	// shorter of ResumeTimeout and HandshakeTimeout. It also bounds how
	// long a closed session keeps trying to deliver its last bytes.
	ResumeTimeout time.Duration

	// KeepAlive is how long a link may stay quiet before a ping is sent;
	// KeepAliveTimeout is how long without hearing from the server before
	// the link is taken for dead and the session resumes on a new one. The
	// server uses the same values. Both are capped at 65 s.
	KeepAlive        time.Duration
	KeepAliveTimeout time.Duration

	// IdleProbe is how long a link stays quiet, while nothing this side
	// sent awaits acknowledgement, before the client sends a PING (at
	// least KeepAlive): often enough to keep NAT bindings. A path that dies
	// while the session is idle is found dead within IdleProbe +
	// KeepAliveTimeout; one that dies while data awaits acknowledgement
	// within KeepAliveTimeout.
	IdleProbe time.Duration

	// Policy decides when the session moves to another pool member (nil:
	// a DefaultPolicy).
	Policy MovePolicy

	// Window is the bytes of input buffered for the application; Retention
	// the bytes of output kept until the server has them (Write blocks when
	// it is full). Per-session memory is at most Window + Retention.
	Window    int
	Retention int
}

const maxKeepAliveWire = 65 * time.Second

func (d *Dialer) withDefaults() Dialer {
	var out Dialer
	if d != nil {
		out = *d
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Metrics == nil {
		out.Metrics = noMetrics{}
	}
	setDefault(&out.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&out.ResumeTimeout, DefaultResumeTimeout)
	setDefault(&out.KeepAlive, DefaultKeepAlive)
	setDefault(&out.KeepAliveTimeout, DefaultKeepAliveTimeout)
	setDefault(&out.IdleProbe, DefaultIdleProbe)
	setDefault(&out.Window, DefaultWindow)
	setDefault(&out.Retention, DefaultRetention)
	out.KeepAlive, out.KeepAliveTimeout = boundKeepAlive(out.KeepAlive, out.KeepAliveTimeout)
	out.IdleProbe = max(out.IdleProbe, out.KeepAlive)
	out.Window = clamp(out.Window, minBufferSize, maxBufferSize)
	out.Retention = clamp(out.Retention, minBufferSize, maxBufferSize)
	return out
}

// Dial opens a session with the zero Dialer.
func Dial(network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), network, address)
}

// Dial opens a session to address.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext opens a session to address and returns it as a *Conn. The
// context bounds the dial and handshake only, not the session's life. In a
// pool, address is best the pool's service address (a DNS name or a load
// balancer that leads to live members): the session resumes at its own
// member's address, and falls back to address (dialed again, a name
// resolved again) when every member it knows fails.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	p := d.withDefaults()
	c, err := p.open(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "mtcp", Addr: stringAddr{network, address}, Err: err}
	}
	return c, nil
}

// stringAddr is a net.Addr for an address that was not resolved.
type stringAddr struct{ network, address string }

func (a stringAddr) Network() string { return a.network }
func (a stringAddr) String() string  { return a.address }

// dialLink opens one transport connection, TLS included.
func (d *Dialer) dialLink(ctx context.Context, network, address string) (net.Conn, error) {
	var nc net.Conn
	var err error
	if d.DialFunc != nil {
		nc, err = d.DialFunc(ctx, network, address)
	} else {
		nd := net.Dialer{KeepAlive: -1} // the links probe for themselves
		nc, err = nd.DialContext(ctx, network, address)
	}
	if err != nil {
		return nil, err
	}
	if d.TLS == nil {
		return nc, nil
	}
	cfg := d.TLS
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			host = address
		}
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, &handshakeError{"TLS handshake", err}
	}
	return tc, nil
}

// withConnDeadline applies ctx's deadline and cancellation to nc's I/O until
// the returned stop is called; stop reports false if ctx ended first.
func withConnDeadline(ctx context.Context, nc net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
}

func (d *Dialer) hello() wire.Hello {
	return wire.Hello{
		MinVersion: wire.Version, MaxVersion: wire.Version,
		Window:                 uint32(d.Window),
		Retention:              uint32(d.Retention),
		KeepAliveMillis:        uint16(d.KeepAlive / time.Millisecond),
		KeepAliveTimeoutMillis: uint16(d.KeepAliveTimeout / time.Millisecond),
	}
}

// clientKeys hands out the ephemeral keys of new sessions' HELLOs: one set
// for the process, since a Dialer is a plain value that may be copied.
var clientKeys auth.Keys

// maxRedirects bounds how many times a new session follows a draining
// server's redirect.
const maxRedirects = 3

// open dials a new session, following a draining member's redirect.
func (d *Dialer) open(ctx context.Context, network, address string) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.HandshakeTimeout)
	defer cancel()
	service := address
	for hop := 0; ; hop++ {
		nc, err := d.dialLink(ctx, network, address)
		if err != nil {
			return nil, err
		}
		c, err := d.openOn(ctx, nc, network, address, service)
		if err == nil {
			return c, nil
		}
		_ = nc.Close()
		var rd *redirectError
		if !errors.As(err, &rd) || hop == maxRedirects {
			return nil, err
		}
		d.Logger.Info("mtcp: server redirects the new session", "from", address, "to", rd.addr, "member", rd.name)
		address = rd.addr
	}
}

// openOn opens a session on nc, a link to address; service is the address
// the session was first dialed at (address, unless a server redirected it).
func (d *Dialer) openOn(ctx context.Context, nc net.Conn, network, address, service string) (*Conn, error) {
	stop := withConnDeadline(ctx, nc)
	kp, err := clientKeys.Get()
	if err != nil {
		stop()
		return nil, err
	}
	hello := d.hello()
	hello.Key = kp.Pub
	if _, err := nc.Write(wire.AppendFrame(wire.Preface[:], hello)); err != nil {
		stop()
		return nil, &handshakeError{"sending HELLO", err}
	}
	br := newHandshakeReader(nc)
	f, err := wire.ReadFrameOf(br, wire.TypeWelcome, wire.TypeRefused)
	if !stop() {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, &handshakeError{"reading WELCOME", err}
	}
	w, err := answerOf[wire.Welcome](f, "HELLO")
	if err != nil {
		return nil, err
	}
	if w.Version != wire.Version {
		return nil, fmt.Errorf("%w: server chose version %d", ErrVersion, w.Version)
	}
	if w.Window < minBufferSize || w.Retention < minBufferSize {
		return nil, fmt.Errorf("%w: server window %d, retention %d", ErrProtocol, w.Window, w.Retention)
	}
	secret, err := kp.DeriveSecret(w.Key, w.Session, kp.Pub, w.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	_ = nc.SetDeadline(time.Time{})
	st := stream.New(stream.Config{Window: d.Window, Retention: d.Retention, PeerRetention: int(w.Retention)}, uint64(w.Window))
	c := newConn(roleClient, w.Session, secret, st, sessionParams{
		keepAlive:        time.Duration(w.KeepAliveMillis) * time.Millisecond,
		keepAliveTimeout: time.Duration(w.KeepAliveTimeoutMillis) * time.Millisecond,
		idleProbe:        max(d.IdleProbe, time.Duration(w.KeepAliveMillis)*time.Millisecond),
		timers:           clientTimers,
		linger:           d.ResumeTimeout,
		log:              d.Logger,
		metrics:          d.Metrics,
	})
	c.client = &clientSide{d: *d, network: network, address: address, service: service,
		pool: w.Flags&wire.WelcomePool != 0, member: w.Member, epoch: w.Epoch}
	c.mu.Lock()
	c.attachLocked(nc, br)
	c.mu.Unlock()
	if logOn(c.log, slog.LevelDebug) {
		c.log.Debug("mtcp: session opened", "server", nc.RemoteAddr().String())
	}
	d.Metrics.SessionOpened()
	return c, nil
}

// handshakeError is a failed step of a link's handshake. It is a net.Error
// whose Timeout reports whether a deadline ended it, and it matches
// ErrProtocol when the peer sent a malformed frame.
type handshakeError struct {
	step string
	err  error
}

func (e *handshakeError) Error() string { return "mtcp: " + e.step + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// Timeout reports whether the step ran out of time.
func (e *handshakeError) Timeout() bool {
	var ne net.Error
	return errors.Is(e.err, os.ErrDeadlineExceeded) || errors.Is(e.err, context.DeadlineExceeded) ||
		(errors.As(e.err, &ne) && ne.Timeout())
}

// Temporary is Timeout (for net.Error).
func (e *handshakeError) Temporary() bool { return e.Timeout() }

// Is matches ErrProtocol for malformed frames.
func (e *handshakeError) Is(target error) bool {
	return target == ErrProtocol && errors.Is(e.err, wire.ErrMalformed)
}
