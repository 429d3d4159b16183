package snapshot

import "fmt"

// Secret is a session's secret, as a Record carries it: whoever holds it
// can prove to a member that it is the session's client. It prints as
// "[redacted]" with every fmt verb, so that a logged Record does not give
// it away; its bytes are reached by indexing or converting it.
type Secret [32]byte

// String returns "[redacted]".
func (Secret) String() string { return "[redacted]" }

// GoString returns "snapshot.Secret{[redacted]}".
func (Secret) GoString() string { return "snapshot.Secret{[redacted]}" }

// Format writes "[redacted]" whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }
