// Command demo shows mtcp at work with no set-up: it starts a pool of three
// members in this process, on loopback, serving the file server of
// examples/fileserver, and downloads a generated file of a few hundred MiB
// while it drains the member serving the download, kills the next one
// abruptly, and overloads the third, so that the client's policy moves the
// session away. It prints a live progress line, a line for each move with
// its pause, and a summary; it exits non-zero if the file's SHA-256 does not
// match.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/migratory/mtcp/examples/fileserver/files"
)

func main() {
	size := flag.Int64("size", 384<<20, "bytes to download")
	rate := flag.Float64("rate", 24, "download speed in MiB/s (the client reads at this pace)")
	verbose := flag.Bool("v", false, "also print mtcp's own log")
	flag.Parse()
	if _, err := run(*size, *rate, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo:", err)
		os.Exit(1)
	}
}

// run runs the demo and returns the moves the session made.
func run(size int64, rateMiB float64, verbose bool) (moves []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := startPool(verbose)
	if err != nil {
		return nil, err
	}
	defer p.close()
	fmt.Printf("pool: %s, each checkpointing every 256 KiB of a download to one replica\n", p.names())

	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	name := files.GeneratedName(size, 42)
	fmt.Printf("downloading %s (%d MiB) from %s at %.0f MiB/s\n\n", name, size>>20, c.MemberName(), rateMiB)

	show := newProgress(c, size, p.events)
	script := newScript(p, c, size, show)
	h := sha256.New()
	start := time.Now()
	got, digest, err := files.Get(c, name, io.MultiWriter(h, &pacer{rate: rateMiB * (1 << 20), start: time.Now()}),
		func(n, _ int64) { show.update(n); script.step(n) })
	show.done()
	if err != nil {
		return show.moves, fmt.Errorf("download failed after %d bytes: %w", got, err)
	}
	want := expected(size)
	fmt.Printf("\nsummary\n")
	fmt.Printf("  downloaded   %d bytes in %v (%.1f MiB/s)\n", got, time.Since(start).Round(time.Millisecond),
		float64(got)/(1<<20)/time.Since(start).Seconds())
	fmt.Printf("  moves        %d\n", len(show.moves))
	for _, m := range show.moves {
		fmt.Printf("               %s\n", m)
	}
	fmt.Printf("  sha256       %x\n", digest)
	fmt.Printf("  expected     %x\n", want)
	if string(h.Sum(nil)) != string(want) || string(digest) != string(want) {
		return show.moves, fmt.Errorf("MISMATCH: the file is corrupt")
	}
	fmt.Printf("verified: every byte arrived exactly once and in order, across %d moves\n", len(show.moves))
	return show.moves, nil
}

// expected computes the generated file's SHA-256 independently.
func expected(size int64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(files.NewGenerator(42), size))
	return h.Sum(nil)
}

// pacer is a writer that makes the download go at about rate bytes per second.
type pacer struct {
	rate  float64
	start time.Time
	n     int64
}

func (p *pacer) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	ahead := time.Duration(float64(p.n)/p.rate*float64(time.Second)) - time.Since(p.start)
	switch {
	case ahead > 0:
		time.Sleep(ahead)
	case ahead < -200*time.Millisecond:
		// Fell behind (a slow server): go on at the pace, without a burst.
		p.start, p.n = time.Now(), 0
	}
	return len(b), nil
}
