// Package scenario holds the tests that exercise mtcp as its users meet it,
// through its public API only: pools of member processes killed with
// SIGKILL and restarted (internal/cmd/mtcp-member), the multi-process
// chaos harness (internal/cmd/mtcp-chaos), members cut off from each other
// in network namespaces, golang.org/x/net/nettest's conformance suite over
// TCP, in-memory pipes and TLS, and unmodified net/http clients and servers
// (curl too) over plain and TLS listeners. It has no code of its own:
//
//	go test ./scenario
package scenario
