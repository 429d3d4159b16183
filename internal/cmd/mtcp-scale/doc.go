// Command mtcp-scale measures mtcp at the size of a real service, side by
// side with raw TCP (and yamux where it compares) in the same run, and
// prints every figure as a Markdown table with its ratio to raw TCP:
//
//	go run ./internal/cmd/mtcp-scale                 # every scenario, default sizes
//	go run ./internal/cmd/mtcp-scale -run idle,open  # some of them
//	go run ./internal/cmd/mtcp-scale -drain-sessions 10000 -run drain
//
// Scenarios (-run, comma-separated):
//
//   - idle: N idle sessions of each kind (-sessions, 10,000): heap and
//     stacks per session and goroutines per session, both ends together,
//     and the CPU all N use over -idle-interval, as a percentage of one core.
//     Kinds: raw TCP, mtcp (standalone listener), a yamux stream in a session
//     of its own over its own TCP connection, and yamux streams sharing one
//     session.
//   - open: sessions opened per second by -dialers (64) concurrent dialers,
//     -open-sessions (5,000) a run, same kinds.
//   - bulk: aggregate throughput and CPU per GB of -bulk-sessions (1, 16 and
//     128) concurrent one-way bulk transfers of 64 KiB writes (raw TCP, mtcp,
//     yamux streams in one session); the 1-session row is the single-stream
//     figure.
//   - echo: 64-byte echo round trip, p50 and p99, one request at a time.
//   - moves: -moves (200) client Migrate calls between the members of a
//     3-member pool while one echo stream flows and the server application
//     checkpoints after every write: the reader's wait for data across each
//     move (p50, p99, max) beside its gaps between moves and those of a raw
//     TCP echo stream, and the moves that failed. The client end lives in
//     this process, or in a child process with -clients child. The stream
//     goes as fast as it can (both cores busy) or at the pace -move-rate
//     sets; -move-latency puts a delay each way between the clients and
//     the members (and the raw TCP reference), as a network would.
//   - drain: Drain of one member of a 3-member pool holding -drain-sessions
//     (1,000) checkpointing echo sessions, -drain-busy (250) of them
//     echoing all through: how long Drain took, sessions lost, moves per
//     session (counted by each session's Dialer Metrics), whether every echo
//     stayed intact.
//   - overload: -overload-sessions (1,000) paced streams on one member of
//     -overload-members (4) whose application then slows to 1/-slow-factor
//     of its pace: after -overload-wait (10 s), sessions per member beside
//     their fair share (in proportion to the pace each serves at: the slow
//     member's is 1/-slow-factor of the others'), whether each is within
//     20% of it and from which second on all were, moves per session,
//     bytes verified. -balance turns on Config.Balance.
//
// The cheap scenarios (idle, open, bulk, echo) run -count times (3) and show
// the median with the range. Every byte that flows is checked: bulk and echo
// against the pattern sent, the others also with SHA-256 digests of the
// input, the echo and the server application's own.
//
// Servers run in this process, on loopback. Client ends of the scenarios with
// many sessions run in a child process (this program re-executed) when both
// ends would not fit under the open-files limit, which the program raises as
// far as it may (-clients child or local forces the choice); the output says
// which limit was used. Every scenario has a deadline (-deadline overrides
// it): one that does not return in time is reported with its goroutines and
// the program exits with status 2. Exit status 1 says a scenario could not
// run to its end, 3 that bytes arrived other than sent.
package main
