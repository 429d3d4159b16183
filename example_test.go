package mtcp_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"strings"

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
