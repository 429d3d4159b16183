package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/migratory/mtcp/pool"
)

// options are the command's flags.
type options struct {
	run     string
	kinds   string
	count   int
	clients string // auto, child or local
	dialers int

	idleSessions int
	idleInterval time.Duration
	idleSettle   time.Duration
	settle       time.Duration
	openSessions int
	bulkSessions string
	bulkTime     time.Duration
	bulkWarmup   time.Duration
	echoRounds   int

	moves       int
	moveGap     time.Duration
	moveRate    int64
	moveLatency time.Duration

	drainSessions int
	drainBusy     int
	drainTimeout  time.Duration

	overloadSessions int
	overloadMembers  int
	overloadWarmup   time.Duration
	overloadWait     time.Duration
	overloadRate     int
	overloadChunk    int
	slowFactor       int
	balance          bool

	profileName   string
	poolHandshake time.Duration
	deadline      time.Duration
	verbose       bool
	cpuProfile    string
	drainProfile  string

	profile   pool.Profile
	logger    *slog.Logger
	fileLimit uint64
	out       io.Writer
}

func (o *options) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.run, "run", strings.Join(scenarioNames(), ","), "scenarios to run, comma-separated")
	fs.StringVar(&o.kinds, "kinds", strings.Join(allKinds, ","), "transports compared in idle, open, bulk and echo (raw TCP is always measured: it is the reference)")
	fs.IntVar(&o.count, "count", 3, "runs of the cheap scenarios (idle, open, bulk, echo); the median is shown")
	fs.StringVar(&o.clients, "clients", "auto", "where many client ends live: auto (a child process when the file limit requires), child or local")
	fs.IntVar(&o.dialers, "dialers", 64, "concurrent dialers when opening sessions")
	fs.IntVar(&o.idleSessions, "sessions", 10000, "idle: sessions of each kind")
	fs.DurationVar(&o.idleInterval, "idle-interval", 5*time.Second, "idle: how long their CPU is measured")
	fs.DurationVar(&o.idleSettle, "idle-settle", time.Second, "idle: wait after opening before measuring")
	fs.DurationVar(&o.settle, "settle", 15*time.Second, "idle, open: after a run, wait at most this long for the processes to go quiet")
	fs.IntVar(&o.openSessions, "open-sessions", 5000, "open: sessions opened per run")
	fs.StringVar(&o.bulkSessions, "bulk-sessions", "1,16,128", "bulk: concurrent sessions, comma-separated")
	fs.DurationVar(&o.bulkTime, "bulk-time", 2*time.Second, "bulk: measured interval of each run")
	fs.DurationVar(&o.bulkWarmup, "bulk-warmup", 2*time.Second, "bulk: streaming before the measured interval")
	fs.IntVar(&o.echoRounds, "echo-rounds", 20000, "echo: 64-byte round trips per run")
	fs.IntVar(&o.moves, "moves", 200, "moves: live migrations while the stream flows")
	fs.DurationVar(&o.moveGap, "move-gap", 20*time.Millisecond, "moves: streaming time between two moves")
	fs.DurationVar(&o.moveLatency, "move-latency", 0, "moves: delay each way between the clients and the members (and the raw TCP echo server), through a proxy: a network's round trip is twice it")
	fs.Int64Var(&o.moveRate, "move-rate", 0, "moves: the stream's pace in bytes per second, both ways (0: as fast as it goes, which keeps both cores busy)")
	fs.IntVar(&o.drainSessions, "drain-sessions", 1000, "drain: checkpointing sessions on the member drained")
	fs.IntVar(&o.drainBusy, "drain-busy", 250, "drain: sessions (spread evenly) that echo all through the drain")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute, "drain: the context given to Drain")
	fs.IntVar(&o.overloadSessions, "overload-sessions", 1000, "overload: paced streaming sessions")
	fs.IntVar(&o.overloadMembers, "overload-members", 4, "overload: pool members")
	fs.DurationVar(&o.overloadWarmup, "overload-warmup", 11*time.Second, "overload: streaming before the member slows (the default policy stays 10 s after a move)")
	fs.DurationVar(&o.overloadWait, "overload-wait", 10*time.Second, "overload: how long after the slowdown the sessions are counted")
	fs.IntVar(&o.overloadRate, "overload-rate", 16<<10, "overload: bytes per second each session streams at full pace")
	fs.IntVar(&o.overloadChunk, "overload-chunk", 4<<10, "overload: bytes per write")
	fs.IntVar(&o.slowFactor, "slow-factor", 10, "overload: the slow member writes this many times slower")
	fs.BoolVar(&o.balance, "balance", false, "overload: members run Config.Balance")
	fs.StringVar(&o.profileName, "profile", "local", "pools' gossip timings: local or lan")
	fs.DurationVar(&o.poolHandshake, "pool-handshake", 0, "pools' Config.HandshakeTimeout (0: the default; Drain waits up to twice it for successors to confirm)")
	fs.DurationVar(&o.deadline, "deadline", 0, "each scenario's deadline (0: computed from its sizes)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (servers, and clients when they live here) to the file")
	fs.StringVar(&o.drainProfile, "drain-cpuprofile", "", "drain: write CPU profiles of the servers (PREFIX.servers.pprof) and of a client process (PREFIX.clients.pprof) while Drain runs, and their allocations before and after it (PREFIX.*.allocs-before.pprof, PREFIX.*.allocs-after.pprof)")
	fs.BoolVar(&o.verbose, "v", false, "log the pools' warnings to standard error")
}

// scenario is one measurement.
type scenario struct {
	name     string
	deadline func(o *options) time.Duration
	run      func(ctx context.Context, o *options) ([]*table, error)
}

var scenarios = []scenario{
	{"idle", idleDeadline, runIdle},
	{"open", openDeadline, runOpen},
	{"bulk", bulkDeadline, runBulk},
	{"echo", echoDeadline, runEcho},
	{"moves", movesDeadline, runMoves},
	{"drain", drainDeadline, runDrain},
	{"overload", overloadDeadline, runOverload},
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

// errIntegrity marks a scenario that saw bytes other than those sent.
var errIntegrity = errors.New("bytes arrived other than sent")

func main() {
	if os.Getenv(childEnv) == "1" {
		runChild()
		return
	}
	var o options
	fs := flag.NewFlagSet("mtcp-scale", flag.ExitOnError)
	o.flags(fs)
	_ = fs.Parse(os.Args[1:])
	o.out = os.Stdout
	os.Exit(run(&o))
}

// run runs the chosen scenarios and returns the exit status: 0, 1 if a
// scenario could not run to its end, 3 if bytes arrived other than sent.
func run(o *options) int {
	if err := o.prepare(); err != nil {
		fmt.Fprintln(os.Stderr, "mtcp-scale:", err)
		return 2
	}
	chosen, err := o.chosen()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mtcp-scale:", err)
		return 2
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mtcp-scale:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "mtcp-scale:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	status := 0
	for _, s := range chosen {
		err := runScenario(o, s)
		switch {
		case errors.Is(err, errIntegrity):
			status = 3
		case err != nil && status == 0:
			status = 1
		}
	}
	return status
}

func (o *options) prepare() error {
	var err error
	if o.profile, err = profileByName(o.profileName); err != nil {
		return err
	}
	if o.count < 1 {
		o.count = 1
	}
	o.logger = discardLogger
	if o.verbose {
		o.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: verboseLevel()}))
	}
	var how string
	o.fileLimit, how = raiseFileLimit(fileLimitWanted)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(o.out, "# mtcp-scale %s\n\n", time.Now().Format(time.DateTime))
	fmt.Fprintf(o.out, "- %s %s/%s, %d CPUs, GOMAXPROCS %d, load average %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	fmt.Fprintf(o.out, "- open files: %s\n", how)
	fmt.Fprintf(o.out, "- loopback TCP; servers in this process; %s\n", o.placement())
	fmt.Fprintf(o.out, "- median of %d runs where shown with a range (min–max)\n", o.count)
	return nil
}

// kindsOf returns the kinds of from that -kinds selects, raw TCP first.
func (o *options) kindsOf(from []string) []string {
	out := []string{kindTCP}
	for _, k := range from {
		if k != kindTCP && slices.Contains(strings.Split(o.kinds, ","), k) {
			out = append(out, k)
		}
	}
	return out
}

func (o *options) placement() string {
	switch o.clients {
	case "child":
		return "client ends in a child process"
	case "local":
		return "client ends in this process"
	}
	return "client ends in this process, or in a child process where the file limit requires"
}

func (o *options) chosen() ([]scenario, error) {
	var out []scenario
	for _, name := range strings.Split(o.run, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, s := range scenarios {
			if s.name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(scenarioNames(), ", "))
		}
	}
	if o.clients != "auto" && o.clients != "child" && o.clients != "local" {
		return nil, fmt.Errorf("-clients %q: auto, child or local", o.clients)
	}
	return out, nil
}

// needChild reports whether the client ends go to a child process, for a
// scenario that needs about fds open files with both ends here.
func (o *options) needChild(fds int) bool {
	switch o.clients {
	case "child":
		return true
	case "local":
		return false
	}
	return uint64(fds) > o.fileLimit
}

// watchdogGrace is how long a scenario may take past its deadline to
// return before the program gives up on it.
const watchdogGrace = 30 * time.Second

// runScenario runs one scenario within its deadline and prints its tables.
func runScenario(o *options, s scenario) error {
	d := s.deadline(o)
	if o.deadline > 0 {
		d = o.deadline
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	type result struct {
		tables []*table
		err    error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		ts, err := s.run(ctx, o)
		done <- result{ts, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(d + watchdogGrace):
		fmt.Fprintf(os.Stderr, "mtcp-scale: scenario %s did not return %v after its deadline of %v; its goroutines:\n", s.name, watchdogGrace, d)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		os.Exit(2)
	}
	fmt.Fprintf(o.out, "\n## %s (%v)\n", s.name, time.Since(start).Round(100*time.Millisecond))
	for _, t := range r.tables {
		t.print(o.out)
	}
	if r.err != nil {
		fmt.Fprintf(o.out, "\n**%s FAILED**: %v\n", s.name, r.err)
	}
	return r.err
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// verboseLevel is the level -v logs at: warnings, or MTCP_SCALE_LOG=info.
func verboseLevel() slog.Level {
	if os.Getenv("MTCP_SCALE_LOG") == "info" {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
