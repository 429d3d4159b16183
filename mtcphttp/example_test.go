package mtcphttp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/mtcphttp"
	"github.com/migratory/mtcp/pool"
)

// A pool of two members serves HTTP. The first one is shut down, as for a
// deploy: the client's keep-alive connection moves to the second one, and
// its next request is answered there, over the same connection.
func Example() {
	key := []byte("an example pool key of 32 bytes!")
	start := func(name string, join ...string) (*mtcp.Listener, *mtcphttp.Server) {
		cfg := mtcp.NewPoolConfig(name, "127.0.0.1:0", key, join...)
		cfg.PoolProfile = pool.ProfileLocal
		ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			log.Fatal(err)
		}
		srv := mtcphttp.New(&http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello from %s\n", name)
			}),
		}, ln)
		go func() { _ = srv.Serve() }()
		return ln, srv
	}
	lnA, srvA := start("a")
	lnB, srvB := start("b", lnA.GossipAddr())
	defer srvB.Close()
	for len(lnA.Members()) < 2 || len(lnB.Members()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}

	var d mtcp.Dialer
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func() {
		resp, err := client.Get("http://" + lnA.Addr().String() + "/")
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(string(b))
	}
	get()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srvA.Shutdown(ctx); err != nil { // a deploy: a's connections move
		log.Fatal(err)
	}
	get()
	// Output:
	// hello from a
	// hello from b
}
