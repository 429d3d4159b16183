// Command mtcp-chaos runs a pool of mtcp member processes, many clients
// streaming stateful echoes through it, and random SIGKILLs and restarts of
// members, for a bounded time. Clients dial a service address, a proxy in
// front of the live members (as a load balancer or a DNS name is in a
// deployment). Every stream is checked with SHA-256 in both directions and
// against the application's digest of its input. A session whose member
// and every member holding copies of its checkpoints were killed before it
// could move is lost by design: such double failures are counted apart,
// from what the members said they held just before they were killed. It
// prints a summary and exits non-zero if a byte was lost, a stream differs
// or a session failed otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func main() {
	cfg := config{}
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long to run")
	flag.IntVar(&cfg.members, "members", 4, "member processes")
	flag.IntVar(&cfg.clients, "clients", 24, "concurrent client streams")
	flag.DurationVar(&cfg.killEvery, "kill-every", 3*time.Second, "mean time between member kills")
	flag.IntVar(&cfg.replicas, "replicas", 1, "checkpoint copies")
	flag.IntVar(&cfg.pairs, "pairs", 0, "percent of kills that take two members at once (double failures)")
	flag.Int64Var(&cfg.seed, "seed", time.Now().UnixNano(), "random seed")
	flag.StringVar(&cfg.memberBin, "member", "", "mtcp-member binary (default: built from ./internal/cmd/mtcp-member)")
	flag.StringVar(&cfg.profile, "profile", "local", "members' gossip timings")
	flag.BoolVar(&cfg.verbose, "v", false, "show the members' logs")
	flag.Parse()
	if cfg.memberBin == "" {
		dir, err := os.MkdirTemp("", "mtcp-chaos-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		cfg.memberBin = filepath.Join(dir, "mtcp-member")
		if out, err := exec.Command("go", "build", "-o", cfg.memberBin, "./internal/cmd/mtcp-member").CombinedOutput(); err != nil {
			fail(fmt.Errorf("building mtcp-member: %v\n%s", err, out))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration+2*time.Minute)
	defer cancel()
	sum, err := run(ctx, cfg)
	fmt.Print(sum)
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mtcp-chaos:", err)
	os.Exit(1)
}
