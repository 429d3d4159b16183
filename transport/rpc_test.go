package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/memnet"
)

func TestRoundTrip(t *testing.T) {
	s, _ := startServer(t, nil)
	type stats struct {
		Sessions map[string]uint64
		Load     float64
		When     time.Time
	}
	when := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s.Handle("stats", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		return stats{Sessions: map[string]uint64{"a": 1, "b": 2}, Load: 0.5, When: when}, nil
	})
	c := newClient(t, nil)
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	var got echoMsg
	data := bytes.Repeat([]byte{0xab}, 100_000)
	require.NoError(t, c.Call(ctx, addr, "echo", echoMsg{Text: "hi", N: 41, Data: data}, &got))
	require.Equal(t, echoMsg{Text: "client:hi", N: 42, Data: data}, got)

	var st stats
	require.NoError(t, c.Call(ctx, addr, "stats", nil, &st))
	require.Equal(t, map[string]uint64{"a": 1, "b": 2}, st.Sessions)
	require.Equal(t, 0.5, st.Load)
	require.True(t, when.Equal(st.When))

	// A nil resp discards the answer; a nil request decodes as zero.
	require.NoError(t, c.Call(ctx, addr, "echo", nil, nil))
	require.NoError(t, c.Call(ctx, addr, "echo", nil, &got))
	require.Equal(t, echoMsg{Text: "client:", N: 1}, got)
}

func TestConcurrentCalls(t *testing.T) {
	s, ln := startServer(t, nil)
	s.Handle("echo", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		time.Sleep(time.Millisecond)
		return echoHandler(ctx, from, decode)
	})
	c := newClient(t, nil)
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 10*time.Second)

	const workers, calls = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				var got echoMsg
				text := fmt.Sprintf("w%d-%d", w, i)
				if err := c.Call(ctx, addr, "echo", echoMsg{Text: text, N: i}, &got); err != nil {
					errs <- err
					return
				}
				if got.Text != "client:"+text || got.N != i+1 {
					errs <- fmt.Errorf("worker %d call %d: got %+v", w, i, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Less(t, ln.n.Load(), int64(workers*calls), "connections are reused")
	require.LessOrEqual(t, c.idleCount(addr), DefaultMaxIdlePerAddr)
	require.Eventually(t, func() bool { return s.openCount() <= DefaultMaxIdlePerAddr }, 2*time.Second,
		5*time.Millisecond, "the connections the pool does not keep are closed")
}

// codedError chooses its RemoteError code.
type codedError struct{ code string }

func (e codedError) Error() string         { return "coded failure " + e.code }
func (e codedError) TransportCode() string { return e.code }

func TestHandlerErrors(t *testing.T) {
	s, ln := startServer(t, nil)
	s.Handle("fail", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		var code string
		if err := decode(&code); err != nil {
			return nil, err
		}
		switch code {
		case "":
			return nil, errors.New("plain failure")
		case "remote":
			return nil, &RemoteError{Code: "passed_on", Message: "from further away"}
		case "panic":
			panic("handler bug")
		case "unencodable":
			return make(chan int), nil
		}
		return nil, fmt.Errorf("wrapped: %w", codedError{code})
	})
	s.Handle("typed", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		var m echoMsg
		return nil, decode(&m)
	})
	c := newClient(t, nil)
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	for _, tc := range []struct {
		kind string
		req  any
		code string
		msg  string
	}{
		{"fail", "not_found", "not_found", "wrapped: coded failure not_found"},
		{"fail", "", CodeError, "plain failure"},
		{"fail", "remote", "passed_on", "from further away"},
		{"fail", "panic", CodeInternal, `handler for "fail" panicked`},
		{"fail", "unencodable", CodeInternal, `encoding "fail" response`},
		{"typed", []int{1, 2, 3}, CodeBadRequest, `decoding "typed" request`},
	} {
		err := c.Call(ctx, addr, tc.kind, tc.req, nil)
		var re *RemoteError
		require.ErrorAs(t, err, &re, "%v", tc.req)
		require.Equal(t, tc.code, re.Code)
		require.Contains(t, re.Message, tc.msg)
		require.ErrorIs(t, err, &RemoteError{Code: tc.code})
		require.NotErrorIs(t, err, &RemoteError{Code: "other"})
	}
	require.EqualValues(t, 1, ln.n.Load(), "errors keep the connection")
}

func TestUnknownKind(t *testing.T) {
	s, ln := startServer(t, nil)
	c := newClient(t, nil)
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	err := c.Call(ctx, addr, "nope", 1, nil)
	require.ErrorIs(t, err, ErrUnknownKind)
	require.ErrorIs(t, err, &RemoteError{Code: CodeUnknownKind})
	require.Contains(t, err.Error(), `"nope"`)

	// Handlers can come and go while serving.
	s.Handle("nope", echoHandler)
	require.NoError(t, c.Call(ctx, addr, "nope", echoMsg{}, nil))
	s.Handle("nope", nil)
	require.ErrorIs(t, c.Call(ctx, addr, "nope", echoMsg{}, nil), ErrUnknownKind)
	require.EqualValues(t, 1, ln.n.Load())

	require.Error(t, c.Call(ctx, addr, "", nil, nil))
	require.Panics(t, func() { s.Handle("", echoHandler) })
	require.Panics(t, func() { s.Handle(string(make([]byte, MaxKindLen+1)), echoHandler) })
}

// slowHandler records what happens to the "slow" handler, which waits for
// its context to end and returns the context's error.
type slowHandler struct {
	started   chan struct{}
	deadlines chan time.Time // the deadline of each call's context
	ended     chan error     // the context's error at the end of each call
}

// slowServer serves "slow" and "echo".
func slowServer(t *testing.T, edit func(*Config)) (*Server, *slowHandler) {
	s, _ := startServer(t, edit)
	h := &slowHandler{
		started:   make(chan struct{}, 10),
		deadlines: make(chan time.Time, 10),
		ended:     make(chan error, 10),
	}
	s.Handle("slow", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		dl, _ := ctx.Deadline()
		h.deadlines <- dl
		h.started <- struct{}{}
		<-ctx.Done()
		h.ended <- ctx.Err()
		return nil, ctx.Err()
	})
	return s, h
}

// callEnded calls "slow" on addr within ctx, which must end the call with
// want well within a second, and returns how the handler's context ended.
func callEnded(t *testing.T, c *Client, ctx context.Context, addr string, h *slowHandler, want error) error {
	t.Helper()
	start := time.Now()
	err := c.Call(ctx, addr, "slow", nil, nil)
	require.ErrorIs(t, err, want)
	require.Less(t, time.Since(start), time.Second)
	select {
	case herr := <-h.ended:
		return herr
	case <-time.After(2 * time.Second):
		t.Fatal("handler context not cancelled")
		return nil
	}
}

func TestCallDeadline(t *testing.T) {
	s, h := slowServer(t, nil)
	c := newClient(t, nil)
	addr := s.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	herr := callEnded(t, c, ctx, addr, h, context.DeadlineExceeded)
	require.Error(t, herr, "the handler's context ends too")
	require.NoError(t, c.Call(ctxTimeout(t, 5*time.Second), addr, "echo", echoMsg{}, nil))
}

func TestCallCancel(t *testing.T) {
	s, h := slowServer(t, nil)
	c := newClient(t, nil)
	addr := s.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	go func() {
		<-h.started
		cancel()
	}()
	herr := callEnded(t, c, ctx, addr, h, context.Canceled)
	require.ErrorIs(t, herr, context.Canceled, "the server cancels when the caller's connection closes")
	// An already-ended context fails at once.
	require.ErrorIs(t, c.Call(ctx, addr, "echo", echoMsg{}, nil), context.Canceled)
}

func TestDefaultCallTimeout(t *testing.T) {
	s, h := slowServer(t, nil)
	c := newClient(t, func(cfg *Config) { cfg.CallTimeout = 150 * time.Millisecond })
	start := time.Now()
	err := c.Call(context.Background(), s.Addr().String(), "slow", nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
	require.Error(t, <-h.ended)
	dl := <-h.deadlines
	require.WithinDuration(t, start.Add(150*time.Millisecond), dl, 100*time.Millisecond,
		"the handler gets the caller's deadline")
}

func TestWrongKey(t *testing.T) {
	var log logBuffer
	s, _ := startServer(t, func(cfg *Config) { cfg.Logger = log.logger() })
	served := make(chan struct{}, 1)
	s.Handle("echo", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		served <- struct{}{}
		return nil, nil
	})
	c := newClient(t, func(cfg *Config) { cfg.Key = otherKey })
	err := c.Call(ctxTimeout(t, 5*time.Second), s.Addr().String(), "echo", echoMsg{}, nil)
	require.ErrorIs(t, err, ErrAuth)
	require.Contains(t, err.Error(), `server "server" did not prove the pool key`)
	log.contains(t, "handshake failed")
	select {
	case <-served:
		t.Fatal("a request was served without the pool key")
	default:
	}
	// The honest client still gets through.
	require.NoError(t, newClient(t, nil).Call(ctxTimeout(t, 5*time.Second), s.Addr().String(), "echo", nil, nil))
}

func TestTooLarge(t *testing.T) {
	s, ln := startServer(t, func(cfg *Config) { cfg.MaxMessage = 4096 })
	s.Handle("big", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		var n int
		if err := decode(&n); err != nil {
			return nil, err
		}
		return make([]byte, n), nil
	})
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	// This end's own limit: refused before dialing.
	small := newClient(t, func(cfg *Config) { cfg.MaxMessage = 2048 })
	err := small.Call(ctx, addr, "echo", echoMsg{Data: make([]byte, 3000)}, nil)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Zero(t, ln.n.Load())

	// The server's limit, learnt in the handshake: refused before sending.
	c := newClient(t, nil)
	err = c.Call(ctx, addr, "echo", echoMsg{Data: make([]byte, 5000)}, nil)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "4096")
	require.NoError(t, c.Call(ctx, addr, "echo", echoMsg{Data: make([]byte, 3000)}, nil))

	// A response over the caller's limit comes back as an error.
	err = small.Call(ctx, addr, "big", 3000, nil)
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorIs(t, err, &RemoteError{Code: CodeTooLarge})
	require.NoError(t, small.Call(ctx, addr, "big", 1000, nil))
	require.EqualValues(t, 2, ln.n.Load(), "limits never cost a connection")
}

func TestConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	for _, key := range [][]byte{nil, []byte("short key 15 by")} {
		_, err := NewServer(ln, Config{Key: key})
		require.ErrorIs(t, err, ErrNoKey)
		_, err = NewClient(Config{Key: key})
		require.ErrorIs(t, err, ErrNoKey)
	}
	for _, cfg := range []Config{
		{Key: testKey, NodeName: string(make([]byte, MaxNameLen+1))},
		{Key: testKey, NodeName: "\xff"},
		{Key: testKey, MaxMessage: MinMessage - 1},
		{Key: testKey, MaxMessage: MaxMessageLimit + 1},
		{Key: testKey, CallTimeout: -1},
		{Key: testKey, MaxConns: -1},
	} {
		_, err := NewClient(cfg)
		require.Error(t, err, "%+v", cfg)
	}
	// The key is copied.
	key := append([]byte(nil), testKey...)
	c, err := NewClient(Config{Key: key})
	require.NoError(t, err)
	key[0]++
	require.Equal(t, testKey, c.cfg.Key)
	require.NoError(t, c.Close())
}

// TestInMemory runs a Server on an in-memory listener and a Client whose
// Dial reaches it.
func TestInMemory(t *testing.T) {
	ln := memnet.Listen("ctl-a")
	s, err := NewServer(ln, Config{NodeName: "a", Key: testKey})
	require.NoError(t, err)
	defer s.Close()
	s.Handle("echo", echoHandler)
	dials := 0
	c, err := NewClient(Config{NodeName: "b", Key: testKey, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		dials++
		require.Equal(t, "ctl-a", addr)
		return ln.Dial(ctx, "mem", addr)
	}})
	require.NoError(t, err)
	defer c.Close()
	ctx := ctxTimeout(t, 5*time.Second)
	for i := range 10 {
		var got echoMsg
		require.NoError(t, c.Call(ctx, "ctl-a", "echo", echoMsg{Text: "mem", N: i}, &got))
		require.Equal(t, echoMsg{Text: "b:mem", N: i + 1}, got)
	}
	require.Equal(t, 1, dials)
}

// TestServerClose: Close ends in-flight calls, idle pooled connections,
// handshakes in progress and the accept loop, and waits for handlers.
func TestServerClose(t *testing.T) {
	s, h := slowServer(t, nil)
	addr := s.Addr().String()
	idle := newClient(t, nil)
	require.NoError(t, idle.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))

	silent, err := net.Dial("tcp", addr) // a handshake that never starts
	require.NoError(t, err)
	defer silent.Close()

	c := newClient(t, nil)
	callErr := make(chan error, 1)
	go func() { callErr <- c.Call(ctxTimeout(t, time.Minute), addr, "slow", nil, nil) }()
	<-h.started

	start := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(start), time.Second)
	require.ErrorIs(t, <-h.ended, context.Canceled, "handlers see their context cancelled")
	select {
	case err := <-callErr:
		require.Error(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("an in-flight call did not end when the server closed")
	}
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = silent.Read(make([]byte, 1))
	require.False(t, isTimeout(err), "a handshaking connection is closed: %v", err)
	require.Zero(t, s.openCount())

	// The idle client notices and fails cleanly; Close again is harmless.
	require.Error(t, idle.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))
	require.NoError(t, s.Close())
}

func TestClientClose(t *testing.T) {
	s, h := slowServer(t, nil)
	addr := s.Addr().String()
	c := newClient(t, nil)
	require.NoError(t, c.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))

	callErr := make(chan error, 1)
	go func() { callErr <- c.Call(ctxTimeout(t, time.Minute), addr, "slow", nil, nil) }()
	<-h.started
	require.NoError(t, c.Close())
	select {
	case err := <-callErr:
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("an in-flight call did not end when the client closed")
	}
	require.Error(t, <-h.ended, "the server's handler is cancelled too")
	require.ErrorIs(t, c.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil), ErrClosed)
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return s.openCount() == 0 }, 2*time.Second, 5*time.Millisecond)
}
