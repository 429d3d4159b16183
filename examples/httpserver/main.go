// Command httpserver shows an HTTP service surviving deploys: it starts a
// pool of three members in this process, on loopback, each serving the
// same net/http handler through package mtcphttp, and sends requests over
// one keep-alive connection while it deploys the members one after the
// other: the member serving the connection is shut down (its connections
// move to the others) and a new member takes its place. It prints which
// member answered which requests, checks every answer, and exits non-zero
// on any error or if the client had to open a second connection.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/mtcphttp"
	"github.com/migratory/mtcp/pool"
)

func main() {
	requests := flag.Int("requests", 2000, "requests to send")
	deploys := flag.Int("deploys", 3, "members to replace while they are served")
	verbose := flag.Bool("v", false, "also print mtcp's own log")
	flag.Parse()
	if err := run(os.Stdout, *requests, *deploys, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
}

// item is the handler every member serves: GET /item?id=N answers a
// document about N and names the member in the X-Member header.
func item(member string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.URL.Query().Get("id"))
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Member", member)
		fmt.Fprint(w, document(id))
	})
}

// document is the body of item id: a few KiB, different for each id.
func document(id int) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(id)))
	line := hex.EncodeToString(sum[:]) + "\n"
	n := 1 + id%64
	b := make([]byte, 0, n*len(line))
	for i := 0; i < n; i++ {
		b = append(b, line...)
	}
	return fmt.Sprintf("item %d\n%s", id, b)
}

// member is one running member of the pool.
type member struct {
	name string
	ln   *mtcp.Listener
	srv  *mtcphttp.Server
}

// cluster is the in-process pool.
type cluster struct {
	key     []byte
	log     *slog.Logger
	next    int
	members []*member
}

// start starts a member and waits until the pool sees it.
func (c *cluster) start() (*member, error) {
	name := fmt.Sprintf("m%d", c.next)
	c.next++
	var join []string
	for _, m := range c.members {
		join = append(join, m.ln.GossipAddr())
	}
	cfg := mtcp.NewPoolConfig(name, "127.0.0.1:0", c.key, join...)
	cfg.PoolProfile = pool.ProfileLocal
	cfg.Logger = c.log
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		return nil, err
	}
	m := &member{name: name, ln: ln, srv: mtcphttp.New(&http.Server{
		Handler:  item(name),
		ErrorLog: log.New(io.Discard, "", 0),
	}, ln)}
	go func() { _ = m.srv.Serve() }()
	c.members = append(c.members, m)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		seen := true
		for _, o := range c.members {
			seen = seen && len(o.ln.Members()) == len(c.members)
		}
		if seen {
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: the members do not see each other", name)
		}
	}
}

// deploy replaces the member named name: it shuts it down (its
// connections move to the others) and starts a new one.
func (c *cluster) deploy(name string) (took time.Duration, added string, err error) {
	for i, m := range c.members {
		if m.name != name {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		if err := m.srv.Shutdown(ctx); err != nil {
			return 0, "", fmt.Errorf("shutting %s down: %w", name, err)
		}
		took = time.Since(start)
		c.members = append(c.members[:i], c.members[i+1:]...)
		n, err := c.start()
		if err != nil {
			return 0, "", err
		}
		return took, n.name, nil
	}
	return 0, "", fmt.Errorf("no member %s", name)
}

func (c *cluster) close() {
	for _, m := range c.members {
		_ = m.srv.Close()
	}
}

// run sends requests over one connection through deploys, and reports.
func run(out io.Writer, requests, deploys int, verbose bool) error {
	c := &cluster{key: []byte("httpserver example pool key 32 b"), log: slog.New(slog.DiscardHandler)}
	if verbose {
		c.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	defer c.close()
	for i := 0; i < 3; i++ {
		if _, err := c.start(); err != nil {
			return err
		}
	}
	base := "http://" + c.members[0].ln.Addr().String()
	fmt.Fprintf(out, "pool of 3 members; requests to %s over one keep-alive connection\n", base)

	var dials atomic.Int32
	var session atomic.Pointer[mtcp.Conn]
	d := &mtcp.Dialer{Logger: c.log}
	tr := &http.Transport{
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			conn, err := d.DialContext(ctx, network, addr)
			if err == nil {
				session.Store(conn.(*mtcp.Conn))
			}
			return conn, err
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	type deployed struct {
		took  time.Duration
		added string
		err   error
	}
	var (
		pending chan deployed // the deploy under way
		gone    string        // the member it replaces
		from    = 1
		by      string
	)
	// finish reports the deploy under way once it is done (wait: wait for it).
	finish := func(wait bool) error {
		if pending == nil || (!wait && len(pending) == 0) {
			return nil
		}
		r := <-pending
		pending = nil
		if r.err != nil {
			return r.err
		}
		fmt.Fprintf(out, "deploy: %s shut down in %v, its connection moved; %s joined\n",
			gone, r.took.Round(time.Millisecond), r.added)
		return nil
	}
	every := requests / (deploys + 1)
	for id := 1; id <= requests; id++ {
		if every > 0 && id%every == 0 && id/every <= deploys {
			if err := finish(true); err != nil {
				return err
			}
			// The member serving the connection is deployed while the
			// next requests go on.
			gone = session.Load().MemberName()
			pending = make(chan deployed, 1)
			go func(done chan<- deployed) {
				took, added, err := c.deploy(gone)
				done <- deployed{took, added, err}
			}(pending)
		}
		member, err := get(client, base, id)
		if err != nil {
			return err
		}
		if member != by {
			if by != "" {
				fmt.Fprintf(out, "requests %d to %d answered by %s\n", from, id-1, by)
			}
			from, by = id, member
		}
		if err := finish(false); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "requests %d to %d answered by %s\n", from, requests, by)
	if err := finish(true); err != nil {
		return err
	}
	if n := dials.Load(); n != 1 {
		return fmt.Errorf("the client opened %d connections", n)
	}
	fmt.Fprintf(out, "%d requests, every answer checked, over 1 connection through %d deploys\n", requests, deploys)
	return nil
}

// get fetches item id and checks its body; it returns the member that
// answered.
func get(client *http.Client, base string, id int) (string, error) {
	resp, err := client.Get(fmt.Sprintf("%s/item?id=%d", base, id))
	if err != nil {
		return "", fmt.Errorf("request %d: %w", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("request %d: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK || string(b) != document(id) {
		return "", fmt.Errorf("request %d: %s, %d bytes not the document", id, resp.Status, len(b))
	}
	return resp.Header.Get("X-Member"), nil
}
