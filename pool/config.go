package pool

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// Config configures a Pool member. NodeName, BindAddr and Key are required;
// the rest has defaults.
type Config struct {
	// NodeName names this member; it must be unique in the pool.
	NodeName string
	// BindAddr is the ip:port gossip binds, over both UDP and TCP; an empty
	// ip means every interface. Port 0 picks a free port; GossipAddr
	// reports it.
	BindAddr string
	// AdvertiseAddr is the ip:port (or ip alone, keeping the bound port)
	// other members reach this one at, when it differs from BindAddr.
	AdvertiseAddr string
	// Join lists gossip addresses of existing members. Empty starts a new
	// pool; otherwise New fails unless at least one of them is joined.
	Join []string
	// Key is the pool key, at least MinKeyLen bytes. Gossip is encrypted
	// and authenticated with a key derived from it, and members with
	// another key cannot join.
	Key []byte
	// ClientAddr is the host:port where mtcp clients reach this member, at
	// most 150 bytes.
	ClientAddr string
	// ControlAddr is the host:port of this member's control plane, at most
	// 150 bytes.
	ControlAddr string
	// Logger receives the pool's log, and memberlist's at debug level. Nil
	// discards both.
	Logger *slog.Logger
	// Profile selects gossip and failure-detection timings; the zero value
	// is ProfileLAN.
	Profile Profile
	// OnChange is called after the membership or any member's metadata
	// (the local member's included) changed. Calls come one at a time from
	// a goroutine of the pool and are coalesced: one call may stand for
	// several changes. It must not block long, and must not call Shutdown.
	OnChange func()
}

// memberlistConfig checks c and turns it into a memberlist configuration
// whose delegates are left for the caller to fill in.
func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	if len(c.Key) < MinKeyLen {
		return nil, ErrNoKey
	}
	if c.NodeName == "" {
		return nil, fmt.Errorf("%w: NodeName is required", errBadConfig)
	}
	if !c.Profile.valid() {
		return nil, fmt.Errorf("%w: unknown profile %d", errBadConfig, int(c.Profile))
	}
	if _, err := encodeMeta(Member{ClientAddr: c.ClientAddr, ControlAddr: c.ControlAddr}); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadConfig, err)
	}
	bindHost, bindPort, err := splitHostPort(c.BindAddr, false)
	if err != nil {
		return nil, fmt.Errorf("%w: BindAddr: %v", errBadConfig, err)
	}
	// memberlist would bind every interface for a host it cannot parse.
	if net.ParseIP(bindHost) == nil {
		return nil, fmt.Errorf("%w: BindAddr %q: not an IP address", errBadConfig, c.BindAddr)
	}
	keyring, err := gossipKeyring(c.Key)
	if err != nil {
		return nil, err
	}

	mc := c.Profile.memberlistConfig()
	mc.Name = c.NodeName
	mc.BindAddr = bindHost
	mc.BindPort = bindPort
	mc.AdvertisePort = bindPort
	if c.AdvertiseAddr != "" {
		host, port, err := splitHostPort(c.AdvertiseAddr, true)
		if err != nil {
			return nil, fmt.Errorf("%w: AdvertiseAddr: %v", errBadConfig, err)
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("%w: AdvertiseAddr %q: not an IP address", errBadConfig, c.AdvertiseAddr)
		}
		mc.AdvertiseAddr = host
		if port > 0 {
			mc.AdvertisePort = port
		}
	}
	mc.Keyring = keyring
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mc.Logger = newMemberlistLogger(logger)
	return mc, nil
}

// splitHostPort parses host:port; with portOptional a bare host is
// accepted too, with port 0.
func splitHostPort(addr string, portOptional bool) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		if portOptional && addr != "" && net.ParseIP(addr) != nil {
			return addr, 0, nil
		}
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %v", p, err)
	}
	return host, int(port), nil
}
