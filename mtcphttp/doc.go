// Package mtcphttp makes the keep-alive connections of a net/http server
// move between the members of an mtcp pool, without changing its handlers.
//
// An HTTP/1.x connection between two requests holds no state of its own
// that its next request depends on: a member that takes the connection
// over there, with nil checkpoint state, reads the client's next request
// and answers it as the first member would have. New installs an
// http.Server ConnState hook that checkpoints each mtcp session with nil
// state whenever it sits at such a boundary, so that:
//
//   - a deploy moves a member's connections to the other members instead
//     of closing them (Server.Shutdown drains the listener first);
//   - a drain, a balancing move or a server's Migrate waits until the
//     connection is between requests (mtcp.Config.SettleTimeout), then
//     moves it: no response is cut, none is written twice, no request runs
//     twice;
//   - after a member crashes, its connections resume on other members
//     from their last replicated boundary: a request in progress there runs
//     again on the new member, which must answer it with the same bytes
//     (mtcp checks them and fails the session rather than corrupt it), so
//     handlers whose answers differ from member to member (a Date header
//     crossing a second, the member's name, a request id) lose such
//     connections on a crash, not on a drain.
//
// # Read-ahead
//
// net/http reads ahead of the request it serves: its buffered reader takes
// whatever the client sent (a pipelining client's next requests), and
// while a handler runs it reads a byte in the background to notice a
// client that went away. An idle point at which the server holds bytes of
// the next request is no boundary: a checkpoint there would claim input
// the server has not served, and a member restoring it would never answer
// that request. The package follows the HTTP/1.x framing of the bytes the
// server reads (request heads, Content-Length and chunked bodies, as
// net/http frames them) and checkpoints an idle connection only when the
// bytes read end exactly where the request just served ends; otherwise it
// waits for the next clean idle point. Bytes it does not understand stop
// the checkpoints of that connection for good.
//
// # What does not move
//
// HTTP/2 connections keep mtcp's standalone continuity only (they survive
// a broken TCP connection to the same member, not a move): HPACK tables,
// stream states and flow-control windows live inside net/http, which does
// not checkpoint them, so no member could take such a connection over.
// mtcp.Listener does not offer h2 over TLS; an http.Server that enables
// unencrypted HTTP/2 (Protocols.SetUnencryptedHTTP2) gets its HTTP/2
// connections unmovable, and its HTTP/1 connections movable once they
// served a request. Hijacked connections (WebSockets) are not checkpointed
// after the hijack. TLS must be the listener's (mtcp.Config.TLS): TLS run
// inside a session (http.Server.ServeTLS on the listener) keeps its keys
// and record sequence inside crypto/tls, and cannot move. Plain clients
// that do not speak mtcp are served as usual and cannot move. Shutdown
// waits for the sessions that cannot move until they end or its context
// ends.
package mtcphttp
