// Package pool is the membership of an mtcp server pool: which servers are
// alive, where their clients and their control plane connect, how loaded
// they are and whether they are draining.
//
// It runs SWIM gossip through github.com/hashicorp/memberlist, encrypted and
// authenticated with a key derived from the pool key. Each member publishes
// its addresses and load as versioned msgpack metadata; members that publish
// metadata this package cannot read are logged and left out of the view.
//
// On top of the view it offers the two placement choices the rest of mtcp
// needs: Replicas (rendezvous hashing, for checkpoint copies) and
// LeastLoaded (for migrations).
package pool
