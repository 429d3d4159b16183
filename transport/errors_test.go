package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRemoteErrorOf: a handler's error is given the code it names, or the
// code of a context error, or CodeError; a *RemoteError passes as it is;
// code and message are cut to what the wire carries.
func TestRemoteErrorOf(t *testing.T) {
	long := strings.Repeat("é", maxErrorMessage)
	for _, tc := range []struct {
		err  error
		want RemoteError
	}{
		{errors.New("plain"), RemoteError{CodeError, "plain"}},
		{fmt.Errorf("wrapped: %w", codedError{"not_found"}), RemoteError{"not_found", "wrapped: coded failure not_found"}},
		{codedError{""}, RemoteError{CodeError, "coded failure "}},
		{fmt.Errorf("waited: %w", &RemoteError{"passed_on", "far"}), RemoteError{"passed_on", "far"}},
		{fmt.Errorf("waited: %w", context.DeadlineExceeded), RemoteError{CodeDeadlineExceeded, "waited: context deadline exceeded"}},
		{context.Canceled, RemoteError{CodeCanceled, "context canceled"}},
		{errors.New(long), RemoteError{CodeError, long[:maxErrorMessage]}},
		{codedError{strings.Repeat("c", 300)}, RemoteError{strings.Repeat("c", maxCodeLen), "coded failure " + strings.Repeat("c", 300)}},
	} {
		require.Equal(t, &tc.want, RemoteErrorOf(tc.err), "%v", tc.err)
	}
}
