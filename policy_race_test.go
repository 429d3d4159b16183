package mtcp

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPolicySharedBySessions: one DefaultPolicy serves every session of a
// Dialer, whose checks run concurrently; under -race, state kept in the
// policy is a data race.
func TestPolicySharedBySessions(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{})
	defer ap.close()
	d := &Dialer{Logger: testLogger(t), Policy: &DefaultPolicy{Settle: time.Millisecond}}
	const sessions = 4
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Dial("tcp", ap.addr("m0"))
			if err != nil {
				errs <- err
				return
			}
			es := newEchoSession(c, uint64(i))
			// Busy, then quiet: the policy's checks see both.
			for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
				if err := es.round(32<<10, 10*time.Second); err != nil {
					errs <- err
					return
				}
			}
			time.Sleep(1500 * time.Millisecond)
			if err := es.round(32<<10, 10*time.Second); err != nil {
				errs <- err
				return
			}
			ap.finishSession(t, es)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, ap.errors())
}
