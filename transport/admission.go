package transport

import (
	"bufio"
	"container/list"
	"errors"
	"fmt"
	"net"
	"time"
)

// busyWriteTimeout bounds the write of a busy answer (36 bytes, which the
// socket's buffer takes at once).
const busyWriteTimeout = 100 * time.Millisecond

// pending is an inbound connection in its handshake.
type pending struct {
	nc      net.Conn
	elem    *list.Element // in Server.handshaking; nil once out (guarded by Server.mu)
	evicted bool          // closed to make room (guarded by Server.mu)
}

// startHandshake records nc as open and in its handshake, which must end
// within HandshakeTimeout, first evicting the connection longest in its
// handshake when MaxHandshakes are. It returns nil if the server is closed.
func (s *Server) startHandshake(nc net.Conn) *pending {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.conns[nc] = struct{}{}
	// Set here, before it can be evicted: an eviction cuts the deadline.
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	var evicted int64
	if s.handshaking.Len() >= s.cfg.MaxHandshakes {
		evicted = s.evictOldestLocked()
	}
	p := &pending{nc: nc}
	p.elem = s.handshaking.PushBack(p)
	s.mu.Unlock()
	if evicted > 0 {
		s.evictLog.warn(s.log, "transport: too many connections in their handshake; closed the oldest",
			"max_handshakes", s.cfg.MaxHandshakes, "evicted_in_all", evicted)
	}
	return p
}

// evictOldestLocked ends the handshake of the connection in it longest and
// returns the number of handshakes so ended in all. Its goroutine sees its
// reads and writes fail at once, answers busy if it can and closes it.
func (s *Server) evictOldestLocked() int64 {
	e := s.handshaking.Front()
	if e == nil {
		return s.evicted
	}
	p := s.handshaking.Remove(e).(*pending)
	p.elem, p.evicted = nil, true
	s.evicted++
	_ = p.nc.SetDeadline(time.Unix(1, 0))
	return s.evicted
}

// endHandshake takes p out of the connections in their handshake. If it
// proved the pool key and was not evicted, it takes a place among the
// MaxConns served (released by leave) and reason is ""; otherwise reason
// says why it will not be served.
func (s *Server) endHandshake(p *pending, proved bool) (reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.elem != nil {
		s.handshaking.Remove(p.elem)
		p.elem = nil
	}
	switch {
	case p.evicted:
		return "closed to make room for newer connections in their handshake"
	case !proved:
		return ""
	case s.served >= s.cfg.MaxConns:
		s.refused++
		return fmt.Sprintf("all %d connections in use", s.cfg.MaxConns)
	}
	s.served++
	return ""
}

// leave gives back the place of an authenticated connection that ends.
func (s *Server) leave() {
	s.mu.Lock()
	s.served--
	s.mu.Unlock()
}

// handshake authenticates p's connection (within the deadline the caller
// set) and reserves it a place among the MaxConns served. A connection
// that cannot be served, because it was evicted or all places are taken,
// is told so with a busy answer when it has the server's hello: if it
// belongs to a member, that member's request was not read and it sends it
// again.
func (s *Server) handshake(p *pending, br *bufio.Reader) (*handshakeResult, error) {
	nc := p.nc
	sh, err := startServerHandshake(nc, br, &s.cfg, s.authKey, &s.keys)
	if err == nil {
		err = sh.verify(br)
	}
	reason := s.endHandshake(p, err == nil)
	if reason == "" {
		if err != nil {
			return nil, err
		}
		hs, err := sh.finish(nc, br)
		if err != nil {
			s.leave()
			return nil, err
		}
		return hs, nil
	}
	if err == nil && !p.evicted { // p.evicted no longer changes
		s.mu.Lock()
		refused := s.refused
		s.mu.Unlock()
		s.fullLog.warn(s.log, "transport: an authenticated connection refused: MaxConns reached",
			"max_conns", s.cfg.MaxConns, "refused_in_all", refused, "peer", sh.ch.Name)
	}
	if sh != nil && !errors.Is(err, ErrAuth) {
		s.answerBusy(nc, sh)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %w", ErrBusy, reason, err)
	}
	return nil, fmt.Errorf("%w: %s", ErrBusy, reason)
}

// answerBusy tells the client, in place of its first frame, that its
// request was not read. It costs an HMAC: turning a flood away must cost
// little.
func (s *Server) answerBusy(nc net.Conn, sh *serverHello) {
	_ = nc.SetWriteDeadline(time.Now().Add(busyWriteTimeout))
	_, _ = nc.Write(sh.busy())
}
