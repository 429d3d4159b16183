package mtcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/transfer"
	"github.com/migratory/mtcp/internal/wire"
)

// floodKind is what a flooding connection sends before it stalls.
type floodKind int

const (
	floodSilent  floodKind = iota // nothing at all
	floodPartial                  // the preface and part of a HELLO
	floodResume                   // a resume HELLO for a session that exists; never a PROOF
)

// handshakeFlood keeps connections to a listener stalled in their
// handshakes: each worker opens one, sends what its kind sends, waits until
// the listener closes it, and opens the next at once.
type handshakeFlood struct {
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
	mu         sync.Mutex
	open       map[net.Conn]bool
	opened     atomic.Int64
	challenged atomic.Int64 // resume HELLOs answered with a CHALLENGE
}

func startHandshakeFlood(addr string, session [wire.SessionIDLen]byte, kinds map[floodKind]int) *handshakeFlood {
	f := &handshakeFlood{stop: make(chan struct{}), open: map[net.Conn]bool{}}
	for kind, n := range kinds {
		for range n {
			f.wg.Add(1)
			go f.worker(addr, kind, session)
		}
	}
	return f
}

func (f *handshakeFlood) worker(addr string, kind floodKind, session [wire.SessionIDLen]byte) {
	defer f.wg.Done()
	partial := frame(rawHello())[:20]
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f.mu.Lock()
		if isClosed(f.stop) {
			f.mu.Unlock()
			_ = nc.Close()
			return
		}
		f.open[nc] = true
		f.mu.Unlock()
		f.opened.Add(1)
		switch kind {
		case floodPartial:
			_, _ = nc.Write(append(wire.Preface[:], partial...))
		case floodResume:
			h := rawHello()
			h.Resume, h.Session, h.Nonce = true, session, auth.Nonce()
			_, _ = nc.Write(append(wire.Preface[:], frame(h)...))
			if fr, err := wire.ReadFrame(nc, nil); err == nil && fr.Type() == wire.TypeChallenge {
				f.challenged.Add(1)
			}
		}
		_, _ = io.Copy(io.Discard, nc) // until the listener closes it
		f.mu.Lock()
		delete(f.open, nc)
		f.mu.Unlock()
		_ = nc.Close()
	}
}

func (f *handshakeFlood) close() {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		close(f.stop)
		for nc := range f.open {
			_ = nc.Close()
		}
		f.mu.Unlock()
	})
	f.wg.Wait()
}

// resetter dials plain TCP connections and resets them all on command (RST
// both ways), as a path that breaks does: the client's links break without
// a proxy between client and listener, whose own delays under load would
// be the listener's peer's.
type resetter struct {
	mu     sync.Mutex
	conns  map[net.Conn]bool
	resets atomic.Int64
}

func (r *resetter) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.conns[nc] = true
	r.mu.Unlock()
	return nc, nil
}

// resetAll resets every connection dialed so far that is still open, and
// says how many it reset.
func (r *resetter) resetAll() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for nc := range r.conns {
		_ = nc.(*net.TCPConn).SetLinger(0)
		if nc.Close() == nil {
			n++
		}
		delete(r.conns, nc)
	}
	r.resets.Add(int64(n))
	return n
}

// resumeCounter counts the resumes of a Dialer's sessions.
type resumeCounter struct {
	noMetrics
	n atomic.Int64
}

func (m *resumeCounter) Resumed(time.Duration) { m.n.Add(1) }

func totalResumes(counters []resumeCounter) int64 {
	var n int64
	for i := range counters {
		n += counters[i].n.Load()
	}
	return n
}

// TestHonestSessionsThroughAHandshakeFlood is the flood with honest
// clients: a listener allowing 16 handshakes at once gets 10 times that in
// silent and half-finished handshakes, plus a flood of resume HELLOs for a
// session that exists (the flooder's own), every one reopened as soon as
// the listener closes it. Meanwhile 100 honest sessions open, then echo
// 128 KiB each (for about 4 s) while every one of their connections is
// reset every 1.5 s, and so resume again and again. Every honest session must
// open and finish byte for byte (SHA-256 both ways), the listener's
// handshakes stay within MaxHandshakes, and its goroutines and live heap
// stay bounded.
func TestHonestSessionsThroughAHandshakeFlood(t *testing.T) {
	const (
		slots  = 16
		honest = 100
		size   = 128 << 10
		buffer = 64 << 10
	)
	srv := listenEcho(t, &Config{
		Logger: testLogger(t), MaxHandshakes: slots, Window: buffer, Retention: buffer,
	})
	ln := srv.ln
	addr := srv.Addr()
	paths := &resetter{conns: map[net.Conn]bool{}}

	own := dialHonest(t, addr)
	defer func() { _ = own.Close() }()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	baseG := runtime.NumGoroutine()

	flood := startHandshakeFlood(addr, own.(*Conn).id, map[floodKind]int{
		floodSilent: 5 * slots, floodPartial: 5 * slots, floodResume: 2 * slots,
	})
	floodWorkers := 12 * slots
	defer flood.close()

	// Watch the listener: through a second of the flood alone, then while
	// the honest clients work.
	var peakHS, peakG, floodG int
	var peakHeap, floodHeap uint64
	watchDone := make(chan struct{})
	stopWatch := make(chan struct{})
	floodAlone := make(chan struct{})
	go func() {
		defer close(watchDone)
		var ms runtime.MemStats
		aloneUntil := time.Now().Add(time.Second)
		for !isClosed(stopWatch) {
			ln.mu.Lock()
			peakHS = max(peakHS, len(ln.inFlight))
			ln.mu.Unlock()
			peakG = max(peakG, runtime.NumGoroutine())
			runtime.GC() // live memory, not garbage yet to collect
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			if !isClosed(floodAlone) {
				floodG, floodHeap = peakG, peakHeap
				if time.Now().After(aloneUntil) {
					close(floodAlone)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	<-floodAlone
	// Once every honest session is open, reset every honest connection
	// every 1.5 s.
	var resetRounds atomic.Int64
	var opening sync.WaitGroup
	opening.Add(honest)
	allOpen := make(chan struct{})
	go func() { opening.Wait(); close(allOpen) }()
	stopResets := make(chan struct{})
	resetsDone := make(chan struct{})
	go func() {
		defer close(resetsDone)
		<-allOpen
		for {
			select {
			case <-stopResets:
				return
			case <-time.After(1500 * time.Millisecond):
			}
			if paths.resetAll() > 0 {
				resetRounds.Add(1)
			}
		}
	}()

	start := time.Now()
	resumes := make([]resumeCounter, honest) // each session's own
	// An honest client waits its turn behind the flood in the accept
	// queue: its dial is given the time to.
	d := Dialer{Logger: testLogger(t), Window: buffer, Retention: buffer, HandshakeTimeout: 15 * time.Second,
		DialFunc: paths.dial}
	var slowestDial, reopened atomic.Int64
	results := make([]transferResult, honest)
	dialErrs := make([]error, honest)
	var wg sync.WaitGroup
	for i := range honest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialStart := time.Now()
			d := d
			d.Metrics = &resumes[i]
			c, err := d.Dial("tcp", addr)
			// A client whose first flight has not reached the listener
			// 20 ms after its handshake began looks like the flood's
			// silent connections, and may be closed to make room (the
			// listener's documented patience). In this process, among the
			// flood's goroutines and the watcher's forced collections
			// under -race, an honest client's goroutine may not run for
			// that long: it opens again, and the test bounds how often.
			for try := 0; try < 3 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)); try++ {
				reopened.Add(1)
				c, err = d.Dial("tcp", addr)
			}
			opening.Done()
			for took := int64(time.Since(dialStart)); ; {
				if prev := slowestDial.Load(); took <= prev || slowestDial.CompareAndSwap(prev, took) {
					break
				}
			}
			if err != nil {
				dialErrs[i] = err
				return
			}
			<-allOpen // the transfers all run through the resets
			src := transfer.NewPaced(newPattern(size, uint64(i+1)), size/4)
			results[i] = echoTransferFrom(c, src, nil)
			_ = c.Close()
			waitSessionEnd(t, c)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stopResets)
	<-resetsDone
	close(stopWatch)
	<-watchDone

	ln.mu.Lock()
	madeRoom := ln.madeRoom
	ln.mu.Unlock()
	t.Logf("%d honest sessions in %v through %d reset rounds (%d connections reset, %d resumes); flood: %d connections opened, %d resume HELLOs challenged, %d handshakes closed to make room",
		honest, took.Round(time.Millisecond), resetRounds.Load(), paths.resets.Load(), totalResumes(resumes), flood.opened.Load(), flood.challenged.Load(), madeRoom)
	t.Logf("slowest dial %v; honest opens closed to make room and made again: %d", time.Duration(slowestDial.Load()).Round(time.Millisecond), reopened.Load())
	require.LessOrEqual(t, reopened.Load(), int64(honest/10), "honest clients are closed to make room")
	t.Logf("peaks: %d handshakes at once (max %d); goroutines %d before the flood, %d with the flood alone, %d with the honest sessions; live heap %d MiB before, %d MiB with the flood alone, %d MiB with the honest sessions",
		peakHS, slots, baseG, floodG, peakG, base.HeapInuse>>20, floodHeap>>20, peakHeap>>20)

	for i, err := range dialErrs {
		require.NoError(t, err, "honest session %d opened", i)
	}
	var want, got [][]byte
	for i, res := range results {
		require.NoError(t, res.WriteErr, "session %d", i)
		require.NoError(t, res.ReadErr, "session %d", i)
		require.Equal(t, int64(size), res.SentN)
		require.Equal(t, int64(size), res.ReceivedN)
		w := digestOf(size, uint64(i+1))
		require.Equal(t, w, res.Sent, "session %d sent its pattern", i)
		require.Equal(t, w, res.Received, "session %d read back exactly what it sent", i)
		want = append(want, w)
		got = append(got, srv.Digest(t))
	}
	slices.SortFunc(want, bytes.Compare)
	slices.SortFunc(got, bytes.Compare)
	require.Equal(t, want, got, "the server read exactly what each session sent")

	// Links were reset while the sessions ran, and the sessions resumed
	// (every byte intact, as checked above). Resets and resumes need not
	// match one for one: a link reset during a resume's handshake is
	// resumed by the next attempt, and one reset while its session closes
	// needs no resume.
	require.GreaterOrEqual(t, resetRounds.Load(), int64(1), "the honest sessions' links were reset")
	require.GreaterOrEqual(t, totalResumes(resumes), resetRounds.Load(), "the sessions resumed after the resets")
	require.Greater(t, flood.challenged.Load(), int64(0), "the resume HELLOs of the flood were answered")
	require.Greater(t, madeRoom, 0, "the flood filled the handshakes")
	require.LessOrEqual(t, peakHS, slots, "handshakes at once stay within MaxHandshakes")
	// The flood costs the listener at most a goroutine and a read buffer
	// per handshake slot (two slots per handshake it may hold), whatever
	// its size; the flooders' own goroutines are in this process too.
	require.LessOrEqual(t, floodG, baseG+floodWorkers+2*slots+8, "goroutines bounded by the handshake slots")
	require.Less(t, floodHeap, base.HeapInuse+8<<20, "heap bounded by the handshake slots")
	// Each honest session adds its two ends, its transfer and the echo;
	// their buffers are bounded by Window and Retention (64 KiB), the
	// transfer's and the links' read buffers: about 1 MiB in all.
	require.Less(t, peakG, floodG+12*honest, "goroutines bounded")
	require.Less(t, peakHeap, floodHeap+honest<<20, "heap bounded")

	flood.close()
	closeHonest(t, own)
}
