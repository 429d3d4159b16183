package pool

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// Profile is a named set of gossip and failure-detection timings.
type Profile int

const (
	// ProfileLAN suits members on one local network: memberlist's LAN
	// defaults (probe every 1 s, failure seen in about 5 s). It is the zero
	// value.
	ProfileLAN Profile = iota
	// ProfileLocal suits members on one host, such as tests on loopback:
	// fast probes, failure seen in about 1 s.
	ProfileLocal
	// ProfileWAN suits members spread over the Internet: memberlist's WAN
	// defaults (probe every 5 s, failure seen in about 30 s).
	ProfileWAN
)

// String returns the profile's name.
func (p Profile) String() string {
	switch p {
	case ProfileLAN:
		return "lan"
	case ProfileLocal:
		return "local"
	case ProfileWAN:
		return "wan"
	}
	return "unknown"
}

// timings are the pool's own intervals, beside memberlist's.
type timings struct {
	// loadEvery is the least time between two gossips of load changes.
	loadEvery time.Duration
	// updateWait bounds how long SetDraining waits for its broadcast, and
	// is the default for Leave.
	updateWait time.Duration
	// reconnectEvery is how often failed members are joined again.
	reconnectEvery time.Duration
}

// valid reports whether p is one of the named profiles.
func (p Profile) valid() bool { return p >= ProfileLAN && p <= ProfileWAN }

// memberlistConfig returns a fresh memberlist configuration with the
// profile's timings.
func (p Profile) memberlistConfig() *memberlist.Config {
	c := p.memberlistTimings()
	if p != ProfileWAN {
		// Gossip is a few hundred bytes a message on a LAN: compressing
		// each one allocated a compressor (tens of KiB) per message, a
		// tenth of what a draining member allocated. Compressed messages
		// from other members are still read.
		c.EnableCompression = false
	}
	return c
}

// memberlistTimings returns memberlist's configuration for the profile's
// timings.
func (p Profile) memberlistTimings() *memberlist.Config {
	switch p {
	case ProfileLocal:
		c := memberlist.DefaultLocalConfig()
		// A probe every 100 ms reaches each of a few members within a few
		// hundred ms; a suspect is declared dead after 3 probe intervals
		// once another member confirms, 9 at most.
		c.ProbeInterval = 100 * time.Millisecond
		c.ProbeTimeout = 50 * time.Millisecond
		c.SuspicionMult = 3
		c.SuspicionMaxTimeoutMult = 3
		c.AwarenessMaxMultiplier = 3
		c.GossipInterval = 30 * time.Millisecond
		// Broadcasts also ride on probes and their acks, so a small
		// retransmit budget can be spent on one member and miss another;
		// 4 sends per update (memberlist's LAN value) make that rare, and
		// a full state exchange every second repairs it.
		c.RetransmitMult = 4
		c.PushPullInterval = time.Second
		c.GossipToTheDeadTime = 2 * time.Second
		c.TCPTimeout = time.Second
		return c
	case ProfileWAN:
		return memberlist.DefaultWANConfig()
	default:
		return memberlist.DefaultLANConfig()
	}
}

// timings returns the pool's own intervals for the profile.
func (p Profile) timings() timings {
	switch p {
	case ProfileLocal:
		return timings{loadEvery: 100 * time.Millisecond, updateWait: time.Second, reconnectEvery: time.Second}
	case ProfileWAN:
		return timings{loadEvery: time.Second, updateWait: 5 * time.Second, reconnectEvery: 60 * time.Second}
	default:
		return timings{loadEvery: 250 * time.Millisecond, updateWait: 2 * time.Second, reconnectEvery: 15 * time.Second}
	}
}
