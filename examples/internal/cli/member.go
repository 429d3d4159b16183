// Package cli holds what the examples' commands share: subcommands, the
// flags that place a member in a pool (or run it standalone), draining on
// a signal, and the accept loop that keeps plain clients out.
package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/migratory/mtcp"
)

// MemberFlags are a pool member's command-line flags.
type MemberFlags struct {
	name      *string
	listen    *string
	advertise *string
	gossip    *string
	join      *string
	key       *string
	replicas  *int
}

// AddMemberFlags defines a member's flags on fs; listen is the default address
// for clients.
func AddMemberFlags(fs *flag.FlagSet, listen string) *MemberFlags {
	return &MemberFlags{
		name:      fs.String("name", "", "member name (default: host:port)"),
		listen:    fs.String("listen", listen, "address for clients"),
		advertise: fs.String("advertise", "", "address clients are told to reach this member at (default: -listen)"),
		gossip:    fs.String("gossip", "", "gossip address ip:port; empty runs a standalone server"),
		join:      fs.String("join", "", "comma-separated gossip addresses of members"),
		key:       fs.String("key", os.Getenv("MTCP_POOL_KEY"), "pool key, hex (default $MTCP_POOL_KEY)"),
		replicas:  fs.Int("replicas", mtcp.DefaultReplicas, "checkpoint copies on other members"),
	}
}

// Listen opens the member's listener as the flags say, logging to log: a
// pool member with -gossip, a standalone server without.
func (f *MemberFlags) Listen(log *slog.Logger) (*mtcp.Listener, error) {
	cfg := &mtcp.Config{Logger: log}
	if *f.gossip != "" {
		k, err := hex.DecodeString(*f.key)
		if err != nil || len(k) < 16 {
			return nil, errors.New("a pool needs -key (or $MTCP_POOL_KEY): at least 16 bytes, hex")
		}
		cfg = mtcp.NewPoolConfig(*f.name, *f.gossip, k)
		cfg.Logger, cfg.Replicas, cfg.Advertise = log, *f.replicas, *f.advertise
		if *f.join != "" {
			cfg.Join = strings.Split(*f.join, ",")
		}
	}
	return mtcp.Listen("tcp", *f.listen, cfg)
}

// DrainOnSignal drains ln, moving its sessions to other members (within
// 30 s), when the process gets SIGINT or SIGTERM.
func DrainOnSignal(ln *mtcp.Listener, log *slog.Logger) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		log.Info("draining: moving every session to other members")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ln.Drain(ctx); err != nil {
			log.Warn("drain", "err", err)
		}
	}()
}

// Serve accepts sessions on ln and runs serve on each in a goroutine of
// its own until ln is closed (a drain closes it: Serve then returns nil). A
// client that does not speak mtcp gets the line refusal and is closed.
func Serve(ln *mtcp.Listener, refusal string, serve func(*mtcp.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		mc, ok := c.(*mtcp.Conn)
		if !ok {
			_, _ = fmt.Fprintln(c, refusal)
			c.Close()
			continue
		}
		go serve(mc)
	}
}
