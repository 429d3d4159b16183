package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// honestLoad calls "echo" on addr in a loop until stopped, and reports the
// calls made and the first error.
type honestLoad struct {
	stop  chan struct{}
	done  chan struct{}
	calls atomic.Int64
	err   error
}

func startHonestLoad(t *testing.T, addr string) *honestLoad {
	c := newClient(t, nil)
	l := &honestLoad{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := c.Call(ctx, addr, "echo", echoMsg{Text: "honest"}, nil)
			cancel()
			if err != nil {
				l.err = err
				return
			}
			l.calls.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

func (l *honestLoad) finish(t *testing.T) {
	close(l.stop)
	<-l.done
	require.NoError(t, l.err, "an honest caller was disturbed")
	require.Positive(t, l.calls.Load())
}

// expectDropped waits for the server to close c and returns how long it took.
func expectDropped(t *testing.T, c net.Conn, within time.Duration) time.Duration {
	t.Helper()
	took, err := droppedAfter(c, within)
	require.NoError(t, err)
	return took
}

// droppedAfter waits for the server to close c and returns how long it
// took, or an error if c is still open after within.
func droppedAfter(c net.Conn, within time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(within)); err != nil {
		return 0, err
	}
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if isTimeout(err) {
			return 0, fmt.Errorf("connection still open after %v", within)
		}
		if err != nil {
			return time.Since(start), nil
		}
	}
}

// authenticated dials addr and completes an honest handshake by hand, to
// misbehave afterwards.
func authenticated(t *testing.T, addr string) (net.Conn, *secureConn) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	cfg, err := Config{NodeName: "raw", Key: testKey}.withDefaults()
	require.NoError(t, err)
	hs, err := clientHandshake(nc, bufio.NewReader(nc), &cfg, authKey(testKey))
	require.NoError(t, err)
	return nc, hs.sec
}

func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

func testHello(max uint32) []byte {
	h := &hello{Version: helloVersion, MaxMessage: max, Name: "raw"}
	_, _ = rand.Read(h.Nonce[:])
	_, _ = rand.Read(h.Pub[:])
	return appendHello(nil, h)
}

func TestHostilePeers(t *testing.T) {
	const handshakeTimeout, idleTimeout = 300 * time.Millisecond, 400 * time.Millisecond
	var log logBuffer
	s, _ := startServer(t, func(cfg *Config) {
		cfg.Logger = log.logger()
		cfg.HandshakeTimeout = handshakeTimeout
		cfg.IdleTimeout = idleTimeout
	})
	s.Handle("sleep", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil, nil
	})
	addr := s.Addr().String()
	load := startHonestLoad(t, addr)

	fast := func(t *testing.T, mark int, c net.Conn, logged string) {
		t.Helper()
		require.Less(t, expectDropped(t, c, 2*time.Second), handshakeTimeout)
		log.containsAfter(t, mark, logged)
	}
	slow := func(t *testing.T, c net.Conn, after time.Duration) {
		t.Helper()
		took := expectDropped(t, c, 3*time.Second)
		require.GreaterOrEqual(t, took, after-50*time.Millisecond)
	}

	t.Run("http", func(t *testing.T) {
		mark := log.mark()
		c := rawDial(t, addr)
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		fast(t, mark, c, "bad magic")
	})
	t.Run("oversized length", func(t *testing.T) {
		mark := log.mark()
		c := rawDial(t, addr)
		_, _ = c.Write(append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 1024)...))
		fast(t, mark, c, "bad magic")
	})
	t.Run("other version", func(t *testing.T) {
		mark := log.mark()
		c := rawDial(t, addr)
		h := testHello(MinMessage)
		h[len(helloMagic)] = 2
		_, _ = c.Write(h)
		fast(t, mark, c, "peer speaks version 2")
	})
	t.Run("tiny max", func(t *testing.T) {
		mark := log.mark()
		c := rawDial(t, addr)
		_, _ = c.Write(testHello(10))
		fast(t, mark, c, "below the minimum")
	})
	t.Run("silent", func(t *testing.T) {
		slow(t, rawDial(t, addr), handshakeTimeout)
	})
	t.Run("half hello", func(t *testing.T) {
		c := rawDial(t, addr)
		_, _ = c.Write(testHello(MinMessage)[:20])
		slow(t, c, handshakeTimeout)
	})
	t.Run("forged proof", func(t *testing.T) {
		mark := log.mark()
		c := rawDial(t, addr)
		_, _ = c.Write(testHello(MinMessage))
		_, _, err := readHello(c)
		require.NoError(t, err)
		_, err = readProof(c)
		require.NoError(t, err)
		var forged [macLen]byte
		_, _ = rand.Read(forged[:])
		_, _ = c.Write(forged[:])
		fast(t, mark, c, "handshake authentication failed")
	})
	t.Run("flood of silent connections", func(t *testing.T) {
		var conns []net.Conn
		for range 50 {
			conns = append(conns, rawDial(t, addr))
		}
		var wg sync.WaitGroup
		took := make([]time.Duration, len(conns))
		errs := make([]error, len(conns))
		for i, c := range conns {
			wg.Go(func() { took[i], errs[i] = droppedAfter(c, 3*time.Second) })
		}
		wg.Wait()
		for i := range conns {
			require.NoError(t, errs[i])
			require.GreaterOrEqual(t, took[i], handshakeTimeout-50*time.Millisecond)
		}
	})

	// Misbehaving after an honest handshake (a member with a bug).
	t.Run("oversized frame", func(t *testing.T) {
		mark := log.mark()
		c, _ := authenticated(t, addr)
		_, _ = c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		fast(t, mark, c, "this end accepts")
	})
	t.Run("short frame", func(t *testing.T) {
		mark := log.mark()
		c, _ := authenticated(t, addr)
		_, _ = c.Write([]byte{0, 0, 0, 3})
		fast(t, mark, c, "shorter than its tag")
	})
	t.Run("garbage frame", func(t *testing.T) {
		mark := log.mark()
		c, _ := authenticated(t, addr)
		frame := make([]byte, 4+100)
		binary.BigEndian.PutUint32(frame, 100)
		_, _ = rand.Read(frame[4:])
		_, _ = c.Write(frame)
		fast(t, mark, c, "failed authentication")
	})
	t.Run("malformed request", func(t *testing.T) {
		mark := log.mark()
		c, sec := authenticated(t, addr)
		_, err := sec.writeFrame([]byte{msgResponse, 1, 2, 3})
		require.NoError(t, err)
		fast(t, mark, c, "malformed request")
	})
	t.Run("pipelined requests", func(t *testing.T) {
		mark := log.mark()
		c, sec := authenticated(t, addr)
		req := appendRequest(nil, 1000, "sleep", nil)
		_, err := sec.writeFrame(req)
		require.NoError(t, err)
		_, err = sec.writeFrame(req)
		require.NoError(t, err)
		fast(t, mark, c, "before the previous one was answered")
	})
	t.Run("silent after handshake", func(t *testing.T) {
		c, _ := authenticated(t, addr)
		slow(t, c, idleTimeout)
	})
	t.Run("half frame", func(t *testing.T) {
		c, _ := authenticated(t, addr)
		_, _ = c.Write([]byte{0, 0, 0, 100, 1, 2, 3})
		slow(t, c, idleTimeout)
	})
	t.Run("honest raw request", func(t *testing.T) {
		_, sec := authenticated(t, addr)
		_, err := sec.writeFrame(appendRequest(nil, 1000, "echo", []byte{0xc0}))
		require.NoError(t, err)
		p, err := sec.readFrame()
		require.NoError(t, err)
		r, err := parseResponse(p)
		require.NoError(t, err)
		require.Nil(t, r.Err)
	})

	load.finish(t)
	require.Eventually(t, func() bool { return s.openCount() <= 1 }, 2*time.Second, 10*time.Millisecond,
		"every hostile connection is gone")
}
