package mtcp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/migratory/mtcp/pool"

	"github.com/migratory/mtcp"
)

// A server replaces net.Listen with mtcp.Listen; the rest of its code is
// unchanged. Each accepted net.Conn is a *mtcp.Conn for mtcp clients and a
// plain connection for any other client.
func ExampleListen() {
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "hello, %s", line)
			}(c)
		}
	}()

	c, err := mtcp.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "gopher")
	reply, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(reply)
	// Output: hello, gopher
}

// A client replaces net.Dial with a Dialer. The session it returns
// reconnects and resumes by itself when its TCP connection breaks.
func ExampleDialer() {
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := bufio.NewScanner(c)
		for s.Scan() {
			fmt.Fprintln(c, strings.ToUpper(s.Text()))
		}
	}()

	d := &mtcp.Dialer{} // the zero Dialer works; set TLS, Logger, timeouts as needed
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, w := range []string{"exactly", "once"} {
		fmt.Fprintln(c, w)
		reply, _ := r.ReadString('\n')
		fmt.Print(reply)
	}
	// Output:
	// EXACTLY
	// ONCE
}

// startTwoMembers starts a pool of two members on loopback, a and b, each
// serving its sessions with app, for the examples.
func startTwoMembers(app func(member string, c *mtcp.Conn)) (a, b *mtcp.Listener) {
	key := []byte("example pool key, 32 bytes long!")
	start := func(name string, join ...string) *mtcp.Listener {
		cfg := mtcp.NewPoolConfig(name, "127.0.0.1:0", key, join...)
		cfg.PoolProfile = pool.ProfileLocal
		ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go app(name, c.(*mtcp.Conn))
			}
		}()
		return ln
	}
	a = start("a")
	b = start("b", a.GossipAddr())
	for len(a.Members()) < 2 || len(b.Members()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	return a, b
}

// A server application states its per-connection state with Checkpoint;
// a member that takes the session over gets it back from State and goes on.
func ExampleConn_Checkpoint() {
	// The application keeps a running total of the numbers it reads.
	adder := func(_ string, c *mtcp.Conn) {
		defer c.Close()
		total := 0
		if st := c.State(); st != nil {
			total, _ = strconv.Atoi(string(st)) // restored after a move
		}
		_ = c.Checkpoint([]byte(strconv.Itoa(total)))
		s := bufio.NewScanner(c)
		for s.Scan() {
			n, _ := strconv.Atoi(s.Text())
			total += n
			fmt.Fprintln(c, total)
			// Everything read so far is accounted for in total, everything
			// written so far follows from it: checkpoint.
			_ = c.Checkpoint([]byte(strconv.Itoa(total)))
		}
	}
	a, b := startTwoMembers(adder)
	defer a.Close()
	defer b.Close()

	c, err := mtcp.Dial("tcp", a.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	mc := c.(*mtcp.Conn)
	for len(mc.Members()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	r := bufio.NewReader(c)
	for i, n := range []int{10, 20, 30} {
		if i == 2 {
			// Move the session to the other member between two numbers.
			if err := mc.Migrate(context.Background(), b.Addr().String()); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Fprintln(c, n)
		line, _ := r.ReadString('\n')
		fmt.Printf("%s: %s", mc.MemberName(), line)
	}
	// Output:
	// a: 10
	// a: 30
	// b: 60
}

// Drain moves every session off a member before it stops, for a deploy.
func ExampleListener_Drain() {
	echo := func(_ string, c *mtcp.Conn) {
		defer c.Close()
		_ = c.Checkpoint(nil) // the echo has no state, but it checkpoints: it can move
		buf := make([]byte, 1024)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			_ = c.Checkpoint(nil)
		}
	}
	a, b := startTwoMembers(echo)
	defer b.Close()
	c, err := mtcp.Dial("tcp", a.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	mc := c.(*mtcp.Conn)
	for len(mc.Members()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprint(c, "ping")
	buf := make([]byte, 4)
	_, _ = io.ReadFull(c, buf)
	fmt.Println(mc.MemberName(), string(buf))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Drain(ctx); err != nil { // returns once its sessions left; a is closed
		log.Fatal(err)
	}
	fmt.Fprint(c, "pong")
	_, _ = io.ReadFull(c, buf)
	fmt.Println(mc.MemberName(), string(buf))
	c.Close()
	<-mc.Done() // the session ends once both ends closed
	// Output:
	// a ping
	// b pong
}
