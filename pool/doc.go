// Package pool is the runtime of an mtcp pool: its membership and the
// coordination of moves between its members. Applications meet it only
// through mtcp.Config (Profile, Balance): package mtcp starts one Runtime for
// each Listener in a pool.
//
// Membership (Pool) runs SWIM gossip through github.com/hashicorp/memberlist,
// encrypted and authenticated with a key derived from the pool key. Each
// member publishes its client and control addresses, its load and whether it
// is draining as versioned msgpack metadata; members that publish metadata
// this package cannot read are logged and left out of the view. On top of the
// view it offers the placement choices the rest of mtcp needs: Replicas
// (rendezvous hashing, for the copies of a session's checkpoints) and, for
// moves, Pick (at random, weighted by spare capacity, so that many choosing
// at once spread) over Loads (sessions weighed by how each member serves
// them), which a drain's plan and the balancer use too.
//
// A Runtime adds the control plane (package transport) and what travels on it:
// takeovers, made by a handover from the member that serves a session or by a
// failover from the copies other members keep; the copies themselves; the
// epochs that fence a member that lost a session; drains and balancing. It
// reaches the listener's sessions only through the Host and Session
// interfaces, which package mtcp implements. Every control-plane message kind,
// its body, its answer and its error codes stand in catalogue.go, mirrored by
// section 11 of spec.md at the repository root, which also gives the words
// used here for each thing.
package pool
