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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/examples/fileserver/files"
	"github.com/migratory/mtcp/examples/internal/cli"
)

func main() {
	cli.Main("fileserver", "fileserver serve [flags] | fileserver get [flags] <name>", map[string]func([]string) error{
		"serve": serve,
		"get":   get,
	})
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	mf := cli.AddMemberFlags(fs, ":7000")
	dir := fs.String("dir", "", "directory of files to serve (generated files are always served)")
	_ = fs.Parse(args)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ln, err := mf.Listen(log)
	if err != nil {
		return err
	}
	log.Info("serving files", "addr", ln.Addr().String(), "member", ln.NodeName(), "dir", *dir)
	cli.DrainOnSignal(ln, log)
	src := files.Multi{Dir: files.Dir(*dir)}
	return cli.Serve(ln, "ERR this server speaks mtcp: use fileserver get", func(mc *mtcp.Conn) {
		if err := files.Serve(mc, src); err != nil && !errors.Is(err, mtcp.ErrMigrated) {
			log.Info("download ended", "session", mc.SessionID(), "err", err)
		}
	})
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
