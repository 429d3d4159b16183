// Package mtcp is Migratory TCP for Go: byte streams that survive the loss of
// the TCP connection under them.
//
// A server replaces net.Listen with Listen and a client replaces net.Dial with
// a Dialer. Each connection is then a session: when its TCP connection is
// reset, silently black-holed, or re-established from a new address, the
// client reconnects, both ends prove they hold the session's secret, and each
// retransmits what the other has not received. The applications on both sides
// see one unbroken stream, delivered exactly once and in order, or an error
// that says why the session was lost (see SessionLostError).
//
// A *Conn implements net.Conn with the standard library's semantics,
// including deadlines and half-close (CloseWrite). A client that does not
// speak mtcp is served by Listen as a plain connection, so that replacing
// net.Listen does not break existing clients.
//
// The wire protocol is described in spec.md at the repository root.
package mtcp
