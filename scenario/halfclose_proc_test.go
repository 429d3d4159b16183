package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/testapp"
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
			pp := startProcPool(t, 3, args)
			defer pp.kill()
			mc := pp.dial(t)
			c := net.Conn(mc)

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
			if i := pp.killMember(killed); i >= 0 {
				pp.restart(i)
			}
			_, err = io.CopyN(c, src, upload/2)
			require.NoError(t, err, "members:\n%s", pp.logs())
			require.NoError(t, mc.CloseWrite())
			waitSessionEnd(t, c)
			require.NoError(t, mc.Err(), "members:\n%s", pp.logs())
			require.NotEqual(t, killed, mc.MemberName())
			final := waitFinal(t, pp.members, mc.SessionID())
			require.Equal(t, hex.EncodeToString(sent.Sum(nil)), final, "the application read exactly the upload")
		})
	}
}
