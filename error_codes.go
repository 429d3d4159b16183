package mtcp

import "github.com/migratory/mtcp/internal/wire"

// ErrorCode says why a peer aborted a session or refused a handshake: the
// code of an ABORT or REFUSED frame (spec.md, section 7). PeerError.Code
// holds it; errors.Is matches a PeerError with the sentinel of its code.
type ErrorCode uint16

// The error codes, as spec.md numbers them.
const (
	CodeProtocol       = ErrorCode(wire.CodeProtocol)       // the peer broke the protocol (ErrProtocol)
	CodeVersion        = ErrorCode(wire.CodeVersion)        // no common protocol version (ErrVersion)
	CodeUnknownSession = ErrorCode(wire.CodeUnknownSession) // no such session (ErrUnknownSession)
	CodeBadProof       = ErrorCode(wire.CodeBadProof)       // the session secret was not proven (ErrBadProof)
	CodeBusy           = ErrorCode(wire.CodeBusy)           // a limit of the server (ErrBusy)
	CodeNotRetained    = ErrorCode(wire.CodeNotRetained)    // bytes needed were freed (ErrNotRetained)
	CodeClosed         = ErrorCode(wire.CodeClosed)         // the session was closed (ErrPeerClosed)
	CodeInternal       = ErrorCode(wire.CodeInternal)       // the peer failed on its own
	CodeMoved          = ErrorCode(wire.CodeMoved)          // another member serves the session (ErrMigrated)
	CodeNotMovable     = ErrorCode(wire.CodeNotMovable)     // no checkpoint the client can resume from (ErrNotMovable)
	CodeStaleEpoch     = ErrorCode(wire.CodeStaleEpoch)     // a newer member holds the session
	CodeDiverged       = ErrorCode(wire.CodeDiverged)       // regenerated output differed (ErrDiverged)
	CodeDraining       = ErrorCode(wire.CodeDraining)       // the member is draining (ErrMemberDraining)
	CodeEvicted        = ErrorCode(wire.CodeEvicted)        // dropped to free memory (ErrEvicted)
)

// String names the code as spec.md does.
func (c ErrorCode) String() string { return wire.Code(c).String() }
