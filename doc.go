// Package mtcp is Migratory TCP for Go: byte streams that survive the loss of
// the TCP connection under them and, in a pool, the loss of the member
// serving them.
//
// A server replaces net.Listen with Listen (or wraps a listener with
// NewListener) and a client replaces net.Dial with a Dialer. Each connection
// is then a session, and each end of it a *Conn, which implements net.Conn
// with the standard library's semantics, deadlines and half-close
// (CloseWrite) included. The applications on both sides see one unbroken
// stream, every byte delivered exactly once and in order, or an error that
// says why the session was lost. A client that does not speak mtcp is served
// by Listen as a plain net.Conn, so replacing net.Listen does not break
// existing clients.
//
// # Standalone
//
// A Listener with a nil or zero Config is standalone. Its sessions survive the
// loss of their link (the TCP connection that carries them): a reset, a path
// that silently drops packets (noticed by keepalives), a client that comes back
// from a new address. The client reconnects, both ends prove that they hold
// the session's secret, and each sends again what the other has not received.
// This needs nothing from the applications; it lasts as long as the server
// process does.
//
// # Pools
//
// Listeners that share a pool key and gossip with each other form a pool
// (Config.Gossip, Config.Join, Config.PoolKey; NewPoolConfig fills them).
// Each is a member, known by its name (Config.NodeName). A client learns the
// members from the member serving it, and a session can move: its server end
// goes to another member while the client's stream goes on. A move is asked
// for by the client (Conn.Migrate, or its MovePolicy when its member
// stalls or slows down), by the server (Conn.Migrate, Listener.Drain before a
// deploy, Config.Balance), or forced by a failure. The member that takes the
// session over gets its latest checkpoint either from the member that served
// it (a handover) or, if that member crashed, from the copies of its
// checkpoints that Config.Replicas other members keep (a failover). Every move
// raises the session's epoch, and a member that lost a session can no longer
// deliver bytes to its client or commit its checkpoints.
//
// # The checkpoint contract
//
// A session moves with its application's state. The server application calls
// Conn.Checkpoint(state) whenever state is its complete per-connection state
// after consuming every byte it has read and writing every byte it has
// written. A member that takes the session over restores the latest
// checkpoint the client can resume from: Conn.State returns the state (nil for
// a new session), Read returns again the input that followed the checkpoint,
// and the application must write again the output that followed it, the same
// bytes, since its output must follow from its state and its input. mtcp
// drops what the client already has and checks the rest against what the
// client received: a byte that differs, or an end of output elsewhere than
// where the client saw it, fails the session with ErrDiverged instead of
// corrupting the stream.
//
// Conn.Restored tells an application that its session was restored on this
// member (moved or failed over here) rather than opened, also when its
// checkpoints carry no state. A move that nothing forces now (Listener.Drain,
// Config.Balance, a server's Conn.Migrate) waits up to Config.SettleTimeout
// for the session to sit at a checkpoint boundary, so that nothing is
// regenerated: request/response protocols that checkpoint between requests
// (package mtcphttp does it for net/http) then move without running a
// request twice.
//
// A new session starts from an implicit checkpoint: no state, nothing read or
// written. An application that never calls Checkpoint works in a pool with
// standalone continuity: its sessions cannot move (Conn.Movable reports
// false) and its writes never block for want of checkpoints. One that does
// checkpoint should do so at least every half of the client's retention of
// input (2 MiB with the default Dialer) to stay movable. Conn.Status and
// Listener.Status say which sessions a crash of their member would lose.
//
// # Errors
//
// Read, Write and the other methods of a Conn return *net.OpError values
// that wrap the cause; test causes with errors.Is and errors.As.
//
//   - A deadline that passed: os.ErrDeadlineExceeded (Timeout() is true).
//     A Conn used after its Close: net.ErrClosed. Write after CloseWrite:
//     ErrWriteClosed; after the peer's Close: ErrPeerClosed.
//   - A session lost: a *SessionLostError (matching ErrSessionLost) whose
//     Reason says why: no resume within the Dialer's ResumeTimeout
//     (ErrResumeTimeout), a client that did not come back within
//     Config.DetachTimeout (ErrDetachTimeout), a session the server no longer
//     knows or dropped to stay within Config.SessionMemory (ErrUnknownSession,
//     ErrEvicted), bytes needed again that were already freed
//     (ErrNotRetained), regenerated output that differs (ErrDiverged), a
//     closed listener (ErrListenerClosed), or a *PeerError: the peer's abort
//     or refusal, whose ErrorCode (CodeBusy, CodeDiverged...) matches the
//     sentinel of the same meaning (ErrBusy, ErrDiverged...). Conn.Err
//     returns it too.
//   - On the member a session left, its application's Read and Write fail
//     with a *SessionMovedError (matching ErrMigrated), which names the
//     member that has it now.
//   - A move that could not be made leaves the session where it was:
//     ErrNotPool, ErrUnknownMember, ErrMemberDraining, ErrNoMember,
//     ErrMoveInProgress, ErrNotMovable, or ErrMoveFailed with the reason.
//     Listener.Drain whose context ended first: ErrDrainIncomplete.
//   - Dial and DialContext fail with the error of the dial or of the
//     handshake, a refusal being a *PeerError (ErrBusy, ErrVersion...).
//     Listen and NewListener refuse a Config whose settings contradict each
//     other with a *ConfigError (matching ErrInvalidConfig) naming the field;
//     Config.Verify makes the same check.
//
// # Testing
//
// Package mtcptest runs a pool inside a test, in the manner of
// net/http/httptest: members serving your handler, clients connected to them
// through in-memory pipes, and calls that move a session (Pool.Move) or crash
// its member (Pool.Crash, or Crash for any Listener), so that an
// application's Checkpoint and State logic is tested in an ordinary unit
// test.
//
// # Protocol
//
// The wire protocol, the control plane's messages and the words used for
// each thing are specified in spec.md at the repository root; the control
// plane's handshake and framing in the documentation of package transport;
// the threat model in SECURITY.md.
package mtcp
