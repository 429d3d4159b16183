// Command mtcp-member runs one member of an mtcp pool serving a stateful
// application of package testapp: the echo, or the upload (-app upload). The multi-process tests and the
// chaos harness start it, kill it and restart it; it reports what happens
// to its sessions as JSON lines on standard output. A line "status TAG" on
// its standard input makes it report the sessions it serves and the
// members holding copies of their checkpoints (Listener.Status), as a
// "status" event carrying TAG; "crash TAG" does the same and then kills the
// process with SIGKILL at once, so that the report describes what died.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/testapp"
	"github.com/migratory/mtcp/pool"
)

func main() {
	name := flag.String("name", "", "member name (required)")
	listen := flag.String("listen", "127.0.0.1:0", "client address")
	gossip := flag.String("gossip", "127.0.0.1:0", "gossip address")
	control := flag.String("control", "", "control-plane address (default: the gossip ip, a free port)")
	join := flag.String("join", "", "comma-separated gossip addresses of members")
	key := flag.String("key", os.Getenv("MTCP_POOL_KEY"), "pool key, hex (or $MTCP_POOL_KEY)")
	replicas := flag.Int("replicas", mtcp.DefaultReplicas, "checkpoint copies on other members")
	profile := flag.String("profile", "lan", "gossip timings: lan, local or wan")
	verbose := flag.Bool("v", false, "log to standard error")
	debug := flag.Bool("debug", false, "with -v, log debug events too")
	var a appConfig
	flag.StringVar(&a.name, "app", "echo", "application: echo, or upload (a banner, CloseWrite, then reading an upload)")
	flag.Int64Var(&a.upload.Banner, "banner", 256<<10, "upload: banner bytes")
	flag.Int64Var(&a.upload.Chunk, "chunk", 64<<10, "upload: banner bytes between checkpoints")
	flag.BoolVar(&a.upload.NoReadCheckpoints, "no-read-checkpoints", false, "upload: no checkpoints after the banner")
	flag.DurationVar(&a.restoreDelay, "restore-delay", 0, "how long the application takes to restore a session's state")
	flag.Parse()
	if *debug {
		logLevel = slog.LevelDebug
	}
	if err := run(*name, *listen, *gossip, *control, *join, *key, *replicas, *profile, *verbose, a); err != nil {
		fmt.Fprintln(os.Stderr, "mtcp-member:", err)
		os.Exit(1)
	}
}

// appConfig says which application the member serves.
type appConfig struct {
	name         string
	upload       testapp.UploadConfig
	restoreDelay time.Duration
}

// logLevel is the level of the log on standard error (-v).
var logLevel = slog.LevelInfo

// out writes one JSON event per line.
type out struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (o *out) event(kv map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kv["t"] = time.Now().UnixMicro()
	_ = o.enc.Encode(kv)
}

func run(name, listen, gossip, control, join, keyHex string, replicas int, profile string, verbose bool, app appConfig) error {
	if name == "" {
		return fmt.Errorf("-name is required")
	}
	if app.name != "echo" && app.name != "upload" {
		return fmt.Errorf("-app %q: want echo or upload", app.name)
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	cfg := &mtcp.Config{NodeName: name, Gossip: gossip, Control: control, PoolKey: key, Replicas: replicas}
	if join != "" {
		cfg.Join = strings.Split(join, ",")
	}
	switch profile {
	case "lan":
	case "local":
		cfg.PoolProfile = pool.ProfileLocal
	case "wan":
		cfg.PoolProfile = pool.ProfileWAN
	default:
		return fmt.Errorf("-profile %q: want lan, local or wan", profile)
	}
	if verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})).With("member", name)
	}
	ln, err := mtcp.Listen("tcp", listen, cfg)
	if err != nil {
		return err
	}
	o := &out{enc: json.NewEncoder(os.Stdout)}
	o.event(map[string]any{"event": "ready", "name": name, "addr": ln.Addr().String(), "gossip": ln.GossipAddr()})

	go answerStatus(ln, o)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := ln.Drain(ctx)
		o.event(map[string]any{"event": "drained", "error": errString(err)})
	}()
	ev := testapp.Events{
		Started: func(id string, restored bool) {
			o.event(map[string]any{"event": "started", "session": id, "restored": restored})
		},
		Final: func(id string, digest []byte) {
			o.event(map[string]any{"event": "final", "session": id, "digest": hex.EncodeToString(digest)})
		},
		Failed: func(id string, err error) {
			o.event(map[string]any{"event": "failed", "session": id, "error": err.Error()})
		},
	}
	testapp.ServeWith(ln, func(s testapp.Session) {
		if app.restoreDelay > 0 && s.State() != nil {
			time.Sleep(app.restoreDelay)
		}
		if app.name == "upload" {
			testapp.Upload(s, app.upload, ev)
			return
		}
		testapp.Echo(s, ev)
	})
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// answerStatus reports the listener's status for every "status TAG" or
// "crash TAG" line read from standard input, until it ends; after a crash
// report the process kills itself.
func answerStatus(ln *mtcp.Listener, o *out) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, tag, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if cmd != "status" && cmd != "crash" {
			continue
		}
		st := ln.Status()
		sessions := make([]map[string]any, 0, len(st.Sessions))
		for _, s := range st.Sessions {
			sessions = append(sessions, map[string]any{
				"id": s.ID, "epoch": s.Epoch, "attached": s.Attached, "replicas": s.Replicas,
			})
		}
		o.event(map[string]any{"event": "status", "tag": tag, "sessions": sessions, "copies": st.CopiesFor})
		if cmd == "crash" {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
