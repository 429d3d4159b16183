package main

import (
	"fmt"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/faultproxy"
)

// clientPaths puts a proxy that delays every byte by a latency, each way,
// between the clients and each member: the members advertise the proxies'
// addresses, so that clients reach them over a path with a real round trip
// while the members talk to each other directly (a pool in one data
// centre, its clients away from it). With no latency there are no proxies.
type clientPaths struct {
	proxies map[string]*faultproxy.Proxy // by member name
}

// newClientPaths makes the paths to n members m0, m1, ... (none if latency
// is 0).
func newClientPaths(n int, latency time.Duration) (*clientPaths, error) {
	cp := &clientPaths{proxies: map[string]*faultproxy.Proxy{}}
	if latency <= 0 {
		return cp, nil
	}
	for i := range n {
		px, err := faultproxy.New("127.0.0.1:1") // pointed at its member by attach
		if err != nil {
			cp.close()
			return nil, fmt.Errorf("client path proxy: %w", err)
		}
		px.SetDelay(latency)
		cp.proxies[memberName(i)] = px
	}
	return cp, nil
}

func memberName(i int) string { return fmt.Sprintf("m%d", i) }

// tweak makes a member advertise its proxy's address.
func (cp *clientPaths) tweak(cfg *mtcp.Config) {
	if px := cp.proxies[cfg.NodeName]; px != nil {
		cfg.Advertise = px.Addr()
	}
}

// attach points each proxy at its member, once the members listen.
func (cp *clientPaths) attach(members []*mtcp.Listener) {
	for i, ln := range members {
		if px := cp.proxies[memberName(i)]; px != nil {
			px.SetTarget(ln.Addr().String())
		}
	}
}

// addr is where clients reach member i.
func (cp *clientPaths) addr(members []*mtcp.Listener, i int) string {
	if px := cp.proxies[memberName(i)]; px != nil {
		return px.Addr()
	}
	return members[i].Addr().String()
}

func (cp *clientPaths) close() {
	for _, px := range cp.proxies {
		_ = px.Close()
	}
}
