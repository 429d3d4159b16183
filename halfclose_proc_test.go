package mtcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/migratory/mtcp/internal/testapp"
	"github.com/stretchr/testify/require"
)

// TestHalfClosedFailoverSIGKILL: member processes serve the upload
// application; the client has read the banner to its end when the member
// serving the session is killed with SIGKILL (and replaced). The member
// that restores the session takes a moment to restore the application's
// state, so that the client's acknowledgement of the end it saw arrives
// before the application ends its output again. The upload and the banner
// arrive intact.
func TestHalfClosedFailoverSIGKILL(t *testing.T) {
	const (
		banner = 256 << 10
		upload = 1 << 20
	)
	for _, lazy := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint after end %v", !lazy), func(t *testing.T) {
			args := []string{"-profile", "local", "-replicas", "1", "-app", "upload",
				"-banner", strconv.Itoa(banner), "-chunk", strconv.Itoa(64 << 10), "-restore-delay", "300ms"}
			if lazy {
				args = append(args, "-no-read-checkpoints")
			}
			var members []*memberProc
			defer func() {
				for _, m := range members {
					m.kill()
				}
			}()
			first := startMember(t, "p0", nil, args)
			members = append(members, first)
			for i := 1; i < 3; i++ {
				members = append(members, startMember(t, fmt.Sprintf("p%d", i), []string{first.gossip}, args))
			}
			c, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", first.addr)
			require.NoError(t, err)
			mc := c.(*Conn)
			waitMembers(t, c, 3)

			got := sha256.New()
			k, err := io.Copy(got, c)
			require.NoError(t, err)
			require.Equal(t, int64(banner), k)
			require.Equal(t, testapp.BannerDigest(banner), got.Sum(nil), "the banner arrives intact")

			sent := sha256.New()
			src := io.TeeReader(newPattern(upload, 97), sent)
			_, err = io.CopyN(c, src, upload/2)
			require.NoError(t, err)

			killed := mc.MemberName()
			for i, m := range members {
				if m.name == killed {
					m.kill()
					members[i] = startMember(t, "p3", []string{members[(i+1)%3].gossip}, args)
				}
			}
			_, err = io.CopyN(c, src, upload/2)
			require.NoError(t, err, "members:\n%s", memberLogs(members))
			require.NoError(t, mc.CloseWrite())
			waitSessionEnd(t, c)
			require.NoError(t, mc.Err(), "members:\n%s", memberLogs(members))
			require.NotEqual(t, killed, mc.MemberName())
			final := waitFinal(t, members, mc.SessionID())
			require.Equal(t, hex.EncodeToString(sent.Sum(nil)), final, "the application read exactly the upload")
		})
	}
}
