package mtcp

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/testapp"
)

// uploadApp runs the upload application (testapp.Upload) on the members of
// an appPool, with the pool's bookkeeping.
func uploadApp(cfg testapp.UploadConfig) func(ap *appPool, member string, c *Conn) {
	return func(ap *appPool, member string, c *Conn) {
		end := ap.begin(member, c)
		var failed error
		testapp.Upload(c, cfg, testapp.Events{
			Final:  ap.setFinal,
			Failed: func(_ string, err error) { failed = err },
		})
		end(failed)
	}
}

// gates holds back the accept loops of members until opened, so that a
// test can order what a restored session receives before its application
// runs.
type gates struct {
	open chan struct{}
	once sync.Once
}

func newGates() *gates { return &gates{open: make(chan struct{})} }

// release opens the gates (again: a no-op).
func (g *gates) release() { g.once.Do(func() { close(g.open) }) }

// except gates every member but the named ones.
func (g *gates) except(names ...string) func(string) <-chan struct{} {
	return func(member string) <-chan struct{} {
		for _, n := range names {
			if n == member {
				return nil
			}
		}
		return g.open
	}
}

// received reports how many input bytes the server end of session id on
// ln has received (-1 if ln does not hold it).
func received(ln *Listener, id string) int64 {
	c := serverEnd(ln, id)
	if c == nil {
		return -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(c.st.Received())
}

// retryUnknownMember calls move again while it fails because the target is
// not in the member list: on a loaded machine gossip may take a member for
// dead for a while.
func retryUnknownMember(move func() error) error {
	for i := 0; ; i++ {
		err := move()
		if !errors.Is(err, ErrUnknownMember) || i == 100 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCheckpointsDurable waits until a server session's application has
// read all its input and its newest checkpoint is durable (copied to the
// replicas): a failover then restores that one.
func waitCheckpointsDurable(t testing.TB, c *Conn) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.server
		return c.st.Consumed() == c.st.Received() && len(s.ckpts) > 0 && s.durable == s.ckpts[len(s.ckpts)-1]
	}, 10*time.Second, time.Millisecond, "the newest checkpoint becomes durable")
}

// TestHalfClosedSessionMoves: the server application writes a banner,
// ends its output (CloseWrite) and goes on reading an upload; the client
// has read the banner to its end. The session then moves (the client's
// Migrate, the server's Migrate, a drain) or fails over (its member
// crashes). The new member's application starts only once the client has
// resumed there and acknowledged, again, the end of output it saw; it then
// regenerates its output's end (at once, from a checkpoint taken after it,
// or after writing the banner's last chunk again, from one taken before).
// Both directions arrive intact.
func TestHalfClosedSessionMoves(t *testing.T) {
	const (
		banner = 256 << 10
		chunk  = 64 << 10
		upload = 1536 << 10
	)
	moves := map[string]func(t *testing.T, ap *appPool, c *Conn) string{
		"client Migrate": func(t *testing.T, ap *appPool, c *Conn) string {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, retryUnknownMember(func() error { return c.Migrate(ctx, ap.addr("m1")) }))
			return "m1"
		},
		"server Migrate": func(t *testing.T, ap *appPool, c *Conn) string {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sc := serverEnd(ap.member("m0"), c.SessionID())
			require.NoError(t, retryUnknownMember(func() error { return sc.Migrate(ctx, ap.addr("m2")) }))
			return "m2"
		},
		"drain": func(t *testing.T, ap *appPool, c *Conn) string {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, ap.member("m0").Drain(ctx))
			return ""
		},
		"failover": func(t *testing.T, ap *appPool, c *Conn) string {
			ap.member("m0").crash()
			return ""
		},
	}
	for _, name := range []string{"client Migrate", "server Migrate", "drain", "failover"} {
		for _, lazy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/checkpoint after end %v", name, !lazy), func(t *testing.T) {
				g := newGates()
				ap := startAppPool(t, 3, func(c *Config) { c.Replicas = 1 }, appOptions{
					app:        uploadApp(testapp.UploadConfig{Banner: banner, Chunk: chunk, NoReadCheckpoints: lazy}),
					acceptGate: g.except("m0"),
				})
				defer ap.close()
				defer g.release() // before the pool closes, if the test fails
				mc := ap.dial(t, nil, "m0")
				c := net.Conn(mc)
				id := mc.SessionID()

				got := sha256.New()
				k, err := io.Copy(got, c)
				require.NoError(t, err, "the banner reads to its end")
				require.Equal(t, int64(banner), k)
				require.Equal(t, testapp.BannerDigest(banner), got.Sum(nil), "the banner arrives intact")

				src := newPattern(upload, 83)
				sent := sha256.New()
				send := func(n int64) {
					t.Helper()
					k, err := io.CopyN(c, io.TeeReader(src, sent), n)
					require.NoError(t, err)
					require.Equal(t, n, k)
				}
				send(upload / 2)
				require.Eventually(t, func() bool { return received(ap.member("m0"), id) == upload/2 },
					5*time.Second, time.Millisecond, "m0 receives the first half")
				waitCheckpointsDurable(t, serverEnd(ap.member("m0"), id))

				to := moves[name](t, ap, mc)
				require.Eventually(t, func() bool {
					s := mc.MemberName()
					return s != "m0" && (to == "" || s == to) && !mc.isEnded()
				}, 15*time.Second, time.Millisecond, "the session leaves m0 (client error: %v)", mc.Err())
				now := ap.member(mc.MemberName())

				// The client's first frames on the new link acknowledge the end
				// it saw; then come its input bytes. Once the new member has them
				// all, the acknowledgement was applied before the application ran.
				send(upload / 4)
				require.Eventually(t, func() bool {
					return mc.isEnded() || received(now, id) == 3*upload/4
				}, 10*time.Second, time.Millisecond)
				require.False(t, mc.isEnded(), "the session ended: %v", mc.Err())
				g.release()

				send(upload / 4)
				require.NoError(t, mc.CloseWrite())
				ap.waitEnded(t, c)
				require.NoError(t, mc.Err())
				k, err = io.Copy(io.Discard, c)
				require.NoError(t, err)
				require.Zero(t, k, "nothing after the end of the banner")
				require.Eventually(t, func() bool { return ap.finalDigest(id) != nil }, 5*time.Second, 5*time.Millisecond)
				require.Equal(t, sent.Sum(nil), ap.finalDigest(id), "the application read exactly the upload")
				served := ap.servedBy(id)
				require.Len(t, served, 2, "served by %v", served)
				require.Equal(t, "m0", served[0])
				for _, err := range ap.errors() {
					require.True(t, name == "failover" && errors.Is(err, ErrSessionLost),
						"only the crashed member's application fails: %v", err)
				}
			})
		}
	}
}

// TestHalfClosedRegeneratedEndDiverges: a restored application that ends
// its output somewhere else than where the client saw it end (after more
// bytes, or before the bytes the client received) fails the session on
// both ends with ErrDiverged; the client never reads a byte past the end.
func TestHalfClosedRegeneratedEndDiverges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift int64
		lazy  bool
	}{
		{"more output", 100, false},
		{"less output", -100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := startAppPool(t, 2, func(c *Config) { c.Replicas = 1 }, appOptions{
				app: uploadApp(testapp.UploadConfig{Banner: 256 << 10, Chunk: 64 << 10, NoReadCheckpoints: tc.lazy, EndShift: tc.shift}),
			})
			defer ap.close()
			mc := ap.dial(t, nil, "m0")
			c := net.Conn(mc)
			id := mc.SessionID()
			k, err := io.Copy(io.Discard, c)
			require.NoError(t, err)
			require.Equal(t, int64(256<<10), k)
			_, err = c.Write(make([]byte, 1000))
			require.NoError(t, err)
			waitCheckpointsDurable(t, serverEnd(ap.member("m0"), id))

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = retryUnknownMember(func() error { return mc.Migrate(ctx, ap.addr("m1")) })
			select {
			case <-mc.endedCh:
			case <-time.After(10 * time.Second):
				t.Fatalf("the session did not fail: %s", mc.debugState())
			}
			require.ErrorIs(t, mc.Err(), ErrDiverged)
			n, _ := c.Read(make([]byte, 10))
			require.Zero(t, n, "nothing past the end")
			require.ErrorIs(t, ap.waitEnd(id, "m1"), ErrDiverged)
		})
	}
}

// replyApp reads its client's input to its end, then writes a reply of n
// bytes (testapp.BannerAt's pattern) and closes, checkpointing after every
// read and every chunk of the reply. Its state: input consumed, whether it
// ended, reply bytes written, the SHA-256 state of the input.
func replyApp(n int64) func(ap *appPool, member string, c *Conn) {
	return func(ap *appPool, member string, c *Conn) {
		defer c.Close()
		id := c.SessionID()
		end := ap.begin(member, c)
		h := sha256.New()
		var ended bool
		var written int64
		if st := c.State(); st != nil {
			ended, written = st[0] == 1, int64(binary.BigEndian.Uint64(st[1:]))
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st[9:]); err != nil {
				end(err)
				return
			}
		}
		checkpoint := func() error {
			st := []byte{0}
			if ended {
				st[0] = 1
			}
			st = binary.BigEndian.AppendUint64(st, uint64(written))
			return c.Checkpoint(append(st, mustState(h)...))
		}
		if err := checkpoint(); err != nil {
			end(err)
			return
		}
		buf := make([]byte, 16<<10)
		for !ended {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			if errors.Is(err, io.EOF) {
				ended = true
				ap.setFinal(id, h.Sum(nil))
			} else if err != nil {
				end(err)
				return
			}
			if err := checkpoint(); err != nil {
				end(err)
				return
			}
		}
		for written < n {
			p := buf[:min(int64(len(buf)), n-written)]
			testapp.BannerAt(written, p)
			if _, err := c.Write(p); err != nil {
				end(err)
				return
			}
			written += int64(len(p))
			if err := checkpoint(); err != nil {
				end(err)
				return
			}
		}
		end(nil)
	}
}

// TestClientHalfClosedSessionMoves: the client sends its request and ends
// its output (CloseWrite); the server application reads it to its end and
// writes a long reply. Midway through the reply the session moves or fails
// over: the new member learns the end of the client's output from the
// client, which sends its FIN again, and the reply goes on. Both
// directions arrive intact.
func TestClientHalfClosedSessionMoves(t *testing.T) {
	const request, reply = 300 << 10, 4 << 20
	for _, failover := range []bool{false, true} {
		t.Run(fmt.Sprintf("failover %v", failover), func(t *testing.T) {
			ap := startAppPool(t, 3, func(c *Config) { c.Replicas = 1 }, appOptions{app: replyApp(reply)})
			defer ap.close()
			mc := ap.dial(t, nil, "m0")
			c := net.Conn(mc)
			defer c.Close() // if the test fails
			id := mc.SessionID()
			sent := sha256.New()
			_, err := io.Copy(c, io.TeeReader(newPattern(request, 7), sent))
			require.NoError(t, err)
			require.NoError(t, mc.CloseWrite())

			got := sha256.New()
			_, err = io.CopyN(got, c, reply/3)
			require.NoError(t, err)
			if failover {
				ap.member("m0").crash()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				require.NoError(t, retryUnknownMember(func() error { return mc.Migrate(ctx, ap.addr("m1")) }),
					"the client knows %s", mc.marksForLog())
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			k, err := io.Copy(got, c)
			require.NoError(t, err)
			require.Equal(t, int64(reply-reply/3), k)
			require.Equal(t, testapp.BannerDigest(reply), got.Sum(nil), "the reply arrives intact")
			ap.waitEnded(t, c)
			require.NoError(t, mc.Err())
			require.Equal(t, sent.Sum(nil), ap.finalDigest(id), "the application read exactly the request")
			served := ap.servedBy(id)
			require.Len(t, served, 2, "served by %v", served)
			require.NotEqual(t, "m0", mc.MemberName())
			for _, err := range ap.errors() {
				require.True(t, failover && errors.Is(err, ErrSessionLost), "only the crashed member's application fails: %v", err)
			}
		})
	}
}
