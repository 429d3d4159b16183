// Command chat is a chat on an mtcp pool: a hub that keeps the rooms'
// logs, pool members that serve clients, and a terminal client.
//
//	export MTCP_POOL_KEY=$(openssl rand -hex 32)
//	chat hub -listen 127.0.0.1:7300
//	chat serve -name a -listen :7301 -gossip 127.0.0.1:7401 -hub 127.0.0.1:7300
//	chat serve -name b -listen :7302 -gossip 127.0.0.1:7402 -join 127.0.0.1:7401 -hub 127.0.0.1:7300
//	chat join -server 127.0.0.1:7301 -nick ana -room lobby
//
// Kill or stop the member a client is on: its chat goes on from another
// member, with no message lost or shown twice. (The hub is the example's
// shared store; a real service would keep the logs in its database.)
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/examples/chat/room"
	"github.com/migratory/mtcp/examples/internal/cli"
)

func main() {
	cli.Main("chat", "chat hub [flags] | chat serve [flags] | chat join [flags]", map[string]func([]string) error{
		"hub":   hub,
		"serve": serve,
		"join":  join,
	})
}

func hub(args []string) error {
	fs := flag.NewFlagSet("hub", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:7300", "address of the hub")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	slog.Info("chat hub", "addr", ln.Addr().String())
	return room.ServeHub(ln, room.NewMemHub())
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	mf := cli.AddMemberFlags(fs, ":7301")
	hubAddr := fs.String("hub", "127.0.0.1:7300", "the chat hub's address")
	_ = fs.Parse(args)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ln, err := mf.Listen(log)
	if err != nil {
		return err
	}
	log.Info("serving chat", "addr", ln.Addr().String(), "member", ln.NodeName())
	cli.DrainOnSignal(ln, log)
	h := &room.RemoteHub{Addr: *hubAddr}
	return cli.Serve(ln, "ERR use chat join", func(mc *mtcp.Conn) { _ = room.Serve(mc, h) })
}

func join(args []string) error {
	fs := flag.NewFlagSet("join", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:7301", "a member's address")
	nick := fs.String("nick", os.Getenv("USER"), "your nickname")
	roomName := fs.String("room", "lobby", "room to join")
	_ = fs.Parse(args)
	c, err := (&mtcp.Dialer{}).DialContext(context.Background(), "tcp", *server)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(c, "JOIN %s %s\n", *nick, *roomName)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if _, err := fmt.Fprintln(c, in.Text()); err != nil {
				return
			}
		}
		_ = c.(*mtcp.Conn).CloseWrite()
	}()
	_, err = io.Copy(os.Stdout, c)
	return err
}
