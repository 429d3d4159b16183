package mtcp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// TestHandshakeChecksTypeBeforeBody sends, where the listener expects a
// HELLO or a PROOF, the header of another frame type with the largest body
// that type allows, and no body. The listener must refuse it from the
// header alone (spec.md, section 3), not read or allocate the body and wait
// for it until the handshake timeout.
func TestHandshakeChecksTypeBeforeBody(t *testing.T) {
	srv, own := listenEchoHonest(t, &Config{Logger: testLogger(t), HandshakeTimeout: 30 * time.Second})
	defer closeHonest(t, own)
	addr := srv.Addr()
	id := own.(*Conn).id

	const proofMax = wire.MACLen + 40 + 2 + 8*wire.MaxKnown
	for _, tc := range []struct {
		name   string
		resume bool
		hdr    []byte
		typ    string
	}{
		{"largest DATA instead of HELLO", false, header(wire.TypeData, 0, 8+wire.MaxPayload), "DATA"},
		{"largest PROOF instead of HELLO", false, header(wire.TypeProof, 0, proofMax), "PROOF"},
		{"largest DATA instead of PROOF", true, header(wire.TypeData, 0, 8+wire.MaxPayload), "DATA"},
		{"largest extension instead of PROOF", true, header(0x80, 0, wire.MaxExtensionBody), "EXT(0x80)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, addr)
			defer p.Close()
			if tc.resume {
				p.resumeHello(id)
			} else {
				p.send(wire.Preface[:])
			}
			p.send(tc.hdr)
			r := p.expectRefused(wire.CodeProtocol)
			require.Contains(t, r.Reason, tc.typ, "refused for its type")
			t.Logf("refused: %s", r.Reason)
		})
	}
	echoOnce(t, own, "unharmed")
}

// TestResumeProofHasItsOwnDeadline: a resume is one round trip, so a
// client that sends a resume HELLO and then nothing is refused after a
// shorter wait for its PROOF (here 3 s), not after the whole handshake
// timeout (9 s).
func TestResumeProofHasItsOwnDeadline(t *testing.T) {
	srv, own := listenEchoHonest(t, &Config{Logger: testLogger(t), HandshakeTimeout: 9 * time.Second})
	defer closeHonest(t, own)
	addr := srv.Addr()

	p := dialRaw(t, addr)
	defer p.Close()
	start := time.Now()
	p.resumeHello(own.(*Conn).id)
	r := p.expectRefused(wire.CodeBusy)
	t.Logf("refused after %v: %s", time.Since(start).Round(time.Millisecond), r.Reason)
	echoOnce(t, own, "unharmed")
}

// TestResumeHelloFloodDoesNotLockOut fills every handshake slot of a
// listener with connections that send a resume HELLO for a session that
// exists (the flooder's own) and never answer the CHALLENGE. Such a
// handshake has proven nothing: it must stay evictable, so that an honest
// client still opens a session, and an honest session still resumes.
func TestResumeHelloFloodDoesNotLockOut(t *testing.T) {
	const slots = 4
	srv := listenEcho(t, &Config{
		Logger: testLogger(t), MaxHandshakes: slots, HandshakeTimeout: 20 * time.Second,
	})
	px := newProxy(t, srv.Addr())
	defer px.Close()
	addr := srv.Addr()

	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: time.Second}
	resumer, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	defer closeHonest(t, resumer)
	echoOnce(t, resumer, "before")

	own, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	defer closeHonest(t, own)
	var flood []*rawPeer
	defer func() {
		for _, p := range flood {
			p.Close()
		}
	}()
	for i := 0; i < 2*slots; i++ {
		p := dialRaw(t, addr)
		flood = append(flood, p)
		p.resumeHello(own.(*Conn).id)
	}

	start := time.Now()
	honest, err := d.Dial("tcp", addr)
	require.NoError(t, err, "an honest client opens a session during the flood (after %v)", time.Since(start))
	echoOnce(t, honest, "during the flood")
	closeHonest(t, honest)

	require.Equal(t, 1, px.ResetAll())
	echoOnce(t, resumer, "resumed during the flood")
}
