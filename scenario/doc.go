// Package scenario holds the tests that exercise mtcp as its users meet it,
// through its public API only: pools of member processes killed with
// SIGKILL and restarted (internal/cmd/mtcp-member), the multi-process
// chaos harness (internal/cmd/mtcp-chaos), and members cut off from each
// other in network namespaces. It has no code of its own:
//
//	go test ./scenario
package scenario
