package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// service is the pool's service address, as a DNS name or a load balancer
// gives one in a deployment: a TCP proxy in front of the live members. Each
// connection goes to a live member picked at random; one that refuses (it
// was just killed) is passed over for another. Clients dial it to open
// their sessions, and come back to it when every member they know is gone.
type service struct {
	ln  net.Listener
	fl  *fleet
	rnd func(int) int

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func startService(fl *fleet, rnd func(int) int) (*service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &service{ln: ln, fl: fl, rnd: rnd, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// addr is the service address.
func (s *service) addr() string { return s.ln.Addr().String() }

// close stops the service and cuts the connections through it.
func (s *service) close() {
	s.mu.Lock()
	s.closed = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *service) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.forward(c)
	}
}

// track registers connections to be cut by close; false if it is closed.
func (s *service) track(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, c := range cs {
		s.conns[c] = struct{}{}
	}
	return true
}

func (s *service) untrack(cs ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		delete(s.conns, c)
	}
}

// forward connects a client to a live member and copies bytes both ways
// until both directions end.
func (s *service) forward(client net.Conn) {
	defer s.wg.Done()
	member := s.dialMember()
	if member == nil {
		_ = client.Close()
		return
	}
	if !s.track(client, member) {
		_ = client.Close()
		_ = member.Close()
		return
	}
	defer s.untrack(client, member)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(member, client) }()
	go func() { defer wg.Done(); pipe(client, member) }()
	wg.Wait()
	_ = client.Close()
	_ = member.Close()
}

// dialMember connects to a live member, trying them in random order.
func (s *service) dialMember() net.Conn {
	addrs := s.fl.addrs()
	for len(addrs) > 0 {
		i := s.rnd(len(addrs))
		c, err := net.DialTimeout("tcp", addrs[i], time.Second)
		if err == nil {
			return c
		}
		addrs = append(addrs[:i], addrs[i+1:]...)
	}
	return nil
}

// pipe copies src to dst. The end of src half-closes dst, as TCP would; a
// failure on either side cuts both.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil || errors.Is(err, io.EOF) {
		if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
			return
		}
	}
	_ = dst.Close()
	_ = src.Close()
}
