package mtcp

import (
	"errors"
	"fmt"

	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

// Sentinel errors: every error of this package wraps one of them, or is a
// typed error below that matches one with errors.Is. They are grouped by
// what failed.

// Errors that end a session, or a handshake.
var (
	// ErrSessionLost is wrapped by every *SessionLostError.
	ErrSessionLost = errors.New("mtcp: session lost")
	// ErrResumeTimeout: no resume succeeded within the resume timeout.
	ErrResumeTimeout = errors.New("mtcp: resume timed out")
	// ErrDetachTimeout: the client did not come back within the detach timeout.
	ErrDetachTimeout = errors.New("mtcp: client did not resume in time")
	// ErrUnknownSession: the server does not know the session (expired, ended, never existed).
	ErrUnknownSession = errors.New("mtcp: unknown session")
	// ErrBadProof: a resume failed to prove knowledge of the session secret.
	ErrBadProof = errors.New("mtcp: bad session proof")
	// ErrNotRetained: the peer needs bytes that were already freed.
	ErrNotRetained = errors.New("mtcp: resume position not retained")
	// ErrProtocol: the peer broke the protocol.
	ErrProtocol = errors.New("mtcp: protocol error")
	// ErrVersion: client and server share no protocol version.
	ErrVersion = errors.New("mtcp: unsupported protocol version")
	// ErrBusy: the server refused a new session or handshake because of its limits.
	ErrBusy = errors.New("mtcp: server busy")
	// ErrPeerClosed: the peer closed the session and reads no more.
	ErrPeerClosed = errors.New("mtcp: peer closed the session")
	// ErrWriteClosed: Write after CloseWrite.
	ErrWriteClosed = errors.New("mtcp: write after CloseWrite")
	// ErrListenerClosed: the session's listener is closed, so it cannot resume.
	ErrListenerClosed = errors.New("mtcp: listener closed")
	// ErrLingerTimeout: after Close, the peer did not take the remaining bytes in time.
	ErrLingerTimeout = errors.New("mtcp: peer did not take the final bytes in time")
	// ErrEvicted: the server dropped the session while its client was away,
	// to stay within its memory budget (Config.SessionMemory).
	ErrEvicted = errors.New("mtcp: session evicted to free memory")
	// ErrCrashed: the session's listener crashed (mtcptest.Crash): its
	// connections were reset and nothing was said to the client or the pool.
	ErrCrashed = errors.New("mtcp: listener crashed")
	// ErrDiverged: output regenerated after a restore differs from what the
	// client had received; the session fails rather than corrupt the stream.
	ErrDiverged = errors.New("mtcp: regenerated output differs from what the client received")
	// ErrMigrated is wrapped by *SessionMovedError: the session now runs on
	// another member.
	ErrMigrated = errors.New("mtcp: session moved to another member")
)

// Errors of a move (Conn.Migrate, a MOVE request). Each leaves the session
// working where it was.
var (
	// ErrNotPool: the session's server is not a pool member.
	ErrNotPool = errors.New("mtcp: the session's server is not in a pool")
	// ErrUnknownMember: no pool member has the address asked for.
	ErrUnknownMember = errors.New("mtcp: no pool member at that address")
	// ErrMemberDraining: the member is leaving the pool and takes no sessions.
	ErrMemberDraining = errors.New("mtcp: the member is draining")
	// ErrNoMember: no address was asked for, and no other member could take
	// the session.
	ErrNoMember = errors.New("mtcp: no other member to move to")
	// ErrMoveInProgress: the session is already moving or reconnecting.
	ErrMoveInProgress = errors.New("mtcp: the session is already moving")
	// ErrMoveFailed is wrapped by a failed move, with the reason.
	ErrMoveFailed = errors.New("mtcp: move failed")
	// ErrNotMovable: the session has no checkpoint its client can resume
	// from (the application never called Checkpoint, or not recently enough
	// for the client's retained input).
	ErrNotMovable = errors.New("mtcp: session cannot move: no usable checkpoint")
)

// Errors of calls made where they do not apply.
var (
	// ErrNotServer: a server-only call (Checkpoint) made on a client Conn.
	ErrNotServer = errors.New("mtcp: only the server end of a session checkpoints")
	// ErrDrainIncomplete: Drain's context ended with sessions still on the member.
	ErrDrainIncomplete = errors.New("mtcp: drain incomplete")
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("mtcp: invalid config")
)

// SessionLostError says that a session ended without being closed and why.
// It matches ErrSessionLost with errors.Is, and unwraps to its Reason.
type SessionLostError struct {
	SessionID string // the session, as SessionID returns it
	Reason    error  // why it was lost
}

// Error names the session and why it was lost.
func (e *SessionLostError) Error() string {
	return fmt.Sprintf("mtcp: session %s lost: %v", e.SessionID, e.Reason)
}

// Unwrap returns the reason.
func (e *SessionLostError) Unwrap() error { return e.Reason }

// Is reports whether target is ErrSessionLost.
func (e *SessionLostError) Is(target error) bool { return target == ErrSessionLost }

// PeerError is an error the peer reported (an ABORT or a refused handshake).
// It matches the sentinel of its code with errors.Is (ErrUnknownSession,
// ErrBadProof, ErrBusy, ErrNotRetained, ErrProtocol, ErrVersion).
type PeerError struct {
	Code    ErrorCode // why, as the peer said it
	Reason  string    // the peer's words, for people
	Refused bool      // a handshake was refused, as opposed to a session aborted
}

// Error says whether the peer refused or aborted, and the code and reason it gave.
func (e *PeerError) Error() string {
	what := "aborted"
	if e.Refused {
		what = "refused"
	}
	if e.Reason == "" {
		return fmt.Sprintf("mtcp: peer %s: %v", what, e.Code)
	}
	return fmt.Sprintf("mtcp: peer %s: %v: %s", what, e.Code, e.Reason)
}

// Is matches the sentinel error of the code.
func (e *PeerError) Is(target error) bool {
	s, ok := codeErrors[wire.Code(e.Code)]
	return ok && s == target
}

var codeErrors = map[wire.Code]error{
	wire.CodeProtocol:       ErrProtocol,
	wire.CodeVersion:        ErrVersion,
	wire.CodeUnknownSession: ErrUnknownSession,
	wire.CodeBadProof:       ErrBadProof,
	wire.CodeBusy:           ErrBusy,
	wire.CodeNotRetained:    ErrNotRetained,
	wire.CodeClosed:         ErrPeerClosed,
	wire.CodeMoved:          ErrMigrated,
	wire.CodeNotMovable:     ErrNotMovable,
	wire.CodeDiverged:       ErrDiverged,
	wire.CodeDraining:       ErrMemberDraining,
	wire.CodeEvicted:        ErrEvicted,
}

// codeOf picks the wire code that describes err to the peer.
func codeOf(err error) wire.Code {
	switch {
	case errors.Is(err, stream.ErrNotRetained), errors.Is(err, ErrNotRetained):
		return wire.CodeNotRetained
	case errors.Is(err, stream.ErrProtocol), errors.Is(err, wire.ErrMalformed), errors.Is(err, ErrProtocol):
		return wire.CodeProtocol
	case errors.Is(err, ErrUnknownSession):
		return wire.CodeUnknownSession
	case errors.Is(err, ErrBadProof):
		return wire.CodeBadProof
	case errors.Is(err, ErrBusy):
		return wire.CodeBusy
	case errors.Is(err, ErrVersion):
		return wire.CodeVersion
	case errors.Is(err, ErrDiverged):
		return wire.CodeDiverged
	case errors.Is(err, ErrNotMovable):
		return wire.CodeNotMovable
	case errors.Is(err, ErrEvicted):
		return wire.CodeEvicted
	}
	return wire.CodeInternal
}

// localError maps an engine error to this package's sentinels.
func localError(err error) error {
	switch {
	case errors.Is(err, stream.ErrNotRetained):
		return fmt.Errorf("%w: %v", ErrNotRetained, err)
	case errors.Is(err, stream.ErrProtocol), errors.Is(err, wire.ErrMalformed):
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	case errors.Is(err, stream.ErrDiverged):
		return fmt.Errorf("%w: %v", ErrDiverged, err)
	}
	return err
}

// timeoutError is a net.Error with Timeout() true that wraps
// os.ErrDeadlineExceeded-like reasons of our own (keepalive).
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }
func (e *timeoutError) Timeout() bool { return true }
func (e *timeoutError) Temporary() bool {
	return true
}

// errStaleLink is what the receive side of a link returns once the link is
// no longer its session's (replaced or dropped): its reader stops quietly.
var errStaleLink = errors.New("stale link")

// errEnded is what a client's resume returns for a session that ended
// meanwhile; errServerProof, for a server whose RESUMED does not prove the
// session's secret.
var (
	errEnded       = errors.New("mtcp: session already ended")
	errServerProof = errors.New("mtcp: server failed to prove the session secret")
)

var errKeepAliveTimeout error = &timeoutError{"mtcp: keepalive timeout: nothing received from the peer"}

// SessionMovedError is what Read and Write return on the member a session
// left. It matches ErrMigrated with errors.Is.
type SessionMovedError struct {
	SessionID string // the session, as SessionID returns it
	To        string // the member that has the session now
}

// Error names the session and the member that has it now.
func (e *SessionMovedError) Error() string {
	return fmt.Sprintf("mtcp: session %s moved to member %s", e.SessionID, e.To)
}

// Is reports whether target is ErrMigrated.
func (e *SessionMovedError) Is(target error) bool { return target == ErrMigrated }
