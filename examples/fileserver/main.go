// Command fileserver is a pool member that streams files, and a client that
// downloads them with a progress bar and checks their SHA-256.
//
// Run a pool of three on one machine (or on three, with their addresses):
//
//	export MTCP_POOL_KEY=$(openssl rand -hex 32)
//	fileserver serve -name a -listen :7001 -gossip 127.0.0.1:7101 -dir /srv/files
//	fileserver serve -name b -listen :7002 -gossip 127.0.0.1:7102 -join 127.0.0.1:7101 -dir /srv/files
//	fileserver serve -name c -listen :7003 -gossip 127.0.0.1:7103 -join 127.0.0.1:7101 -dir /srv/files
//	fileserver get -server 127.0.0.1:7001 -o big.iso big.iso
//
// Stop or kill the member serving the download: it goes on from another.
// Names of the form gen/<size>/<seed> are generated files of that size.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/examples/fileserver/files"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fileserver:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fileserver serve [flags] | fileserver get [flags] <name>")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "member name (default: host:port)")
	listen := fs.String("listen", ":7000", "address for clients")
	advertise := fs.String("advertise", "", "address clients are told to reach this member at (default: -listen)")
	gossip := fs.String("gossip", "", "gossip address ip:port; empty runs a standalone server")
	join := fs.String("join", "", "comma-separated gossip addresses of members")
	key := fs.String("key", os.Getenv("MTCP_POOL_KEY"), "pool key, hex (default $MTCP_POOL_KEY)")
	replicas := fs.Int("replicas", mtcp.DefaultReplicas, "checkpoint copies on other members")
	dir := fs.String("dir", "", "directory of files to serve (generated files are always served)")
	_ = fs.Parse(args)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := &mtcp.Config{Logger: log}
	if *gossip != "" {
		k, err := hex.DecodeString(*key)
		if err != nil || len(k) < 16 {
			return errors.New("a pool needs -key (or $MTCP_POOL_KEY): at least 16 bytes, hex")
		}
		cfg = mtcp.NewPoolConfig(*name, *gossip, k)
		cfg.Logger, cfg.Replicas, cfg.Advertise = log, *replicas, *advertise
		if *join != "" {
			cfg.Join = strings.Split(*join, ",")
		}
	}
	ln, err := mtcp.Listen("tcp", *listen, cfg)
	if err != nil {
		return err
	}
	log.Info("serving files", "addr", ln.Addr().String(), "member", ln.NodeName(), "dir", *dir)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		log.Info("draining: moving every download to other members")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ln.Drain(ctx); err != nil {
			log.Warn("drain", "err", err)
		}
	}()
	src := files.Multi{Dir: files.Dir(*dir)}
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
			_, _ = fmt.Fprintln(c, "ERR this server speaks mtcp: use fileserver get")
			c.Close()
			continue
		}
		go func() {
			if err := files.Serve(mc, src); err != nil && !errors.Is(err, mtcp.ErrMigrated) {
				log.Info("download ended", "session", mc.SessionID(), "err", err)
			}
		}()
	}
}

func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:7000", "a member's address")
	out := fs.String("o", "", "write the file here (default: discard it)")
	rate := fs.Float64("rate", 0, "read at most this many MiB/s (0: as fast as it comes)")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("get needs one file name")
	}
	name := fs.Arg(0)
	var w io.Writer = io.Discard
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	c, err := (&mtcp.Dialer{}).DialContext(context.Background(), "tcp", *server)
	if err != nil {
		return err
	}
	defer c.Close()
	mc := c.(*mtcp.Conn)
	start := time.Now()
	var last time.Time
	n, sum, err := files.Get(c, name, w, func(got, size int64) {
		if *rate > 0 {
			if ahead := time.Duration(float64(got)/(*rate*(1<<20))*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		if time.Since(last) > 200*time.Millisecond || got == size {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "\r%s %8.1f / %.1f MiB  %6.1f MiB/s  from %-8s", bar(got, size), float64(got)/(1<<20),
				float64(size)/(1<<20), float64(got)/(1<<20)/time.Since(start).Seconds(), mc.MemberName())
		}
	})
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes, sha256 %x (verified)\n", name, n, sum)
	return nil
}

// bar draws a progress bar.
func bar(got, size int64) string {
	const width = 30
	done := width
	if size > 0 {
		done = int(got * width / size)
	}
	return "[" + strings.Repeat("#", done) + strings.Repeat(".", width-done) + "]"
}
