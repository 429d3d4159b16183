package wire

import "fmt"

// Code says why a session was aborted or a handshake refused (spec.md, section 7).
type Code uint16

// Error codes.
const (
	CodeProtocol       Code = 1
	CodeVersion        Code = 2
	CodeUnknownSession Code = 3
	CodeBadProof       Code = 4
	CodeBusy           Code = 5
	CodeNotRetained    Code = 6
	CodeClosed         Code = 7
	CodeInternal       Code = 8
	CodeMoved          Code = 9  // the session is served by another member (see the redirect)
	CodeNotMovable     Code = 10 // the session has no checkpoint the client can resume from
	CodeStaleEpoch     Code = 11 // a newer server holds the session
	CodeDiverged       Code = 12 // regenerated output differs from what the client received
	CodeDraining       Code = 13 // the member is draining and takes no sessions
	CodeEvicted        Code = 14 // the server dropped the detached session to free memory
)

var codeNames = map[Code]string{
	CodeProtocol:       "protocol error",
	CodeVersion:        "unsupported version",
	CodeUnknownSession: "unknown session",
	CodeBadProof:       "bad proof",
	CodeBusy:           "server busy",
	CodeNotRetained:    "resume position not retained",
	CodeClosed:         "session closed",
	CodeInternal:       "internal error",
	CodeMoved:          "session moved",
	CodeNotMovable:     "session not movable",
	CodeStaleEpoch:     "stale epoch",
	CodeDiverged:       "regenerated output diverged",
	CodeDraining:       "member draining",
	CodeEvicted:        "session evicted",
}

// String returns the code's name, or its number for a code not known.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code %d", uint16(c))
}
