package pool_test

import (
	"fmt"
	"time"

	"github.com/migratory/mtcp/pool"
)

// Two members form a pool; each learns where the other takes clients.
func ExampleNew() {
	key := []byte("a secret shared by the whole pool")
	a, err := pool.New(pool.Config{
		NodeName:    "a",
		BindAddr:    "127.0.0.1:0",
		Key:         key,
		ClientAddr:  "127.0.0.1:7001",
		ControlAddr: "127.0.0.1:8001",
		Profile:     pool.ProfileLocal,
	})
	if err != nil {
		panic(err)
	}
	defer a.Shutdown()

	b, err := pool.New(pool.Config{
		NodeName:    "b",
		BindAddr:    "127.0.0.1:0",
		Join:        []string{a.GossipAddr()},
		Key:         key,
		ClientAddr:  "127.0.0.1:7002",
		ControlAddr: "127.0.0.1:8002",
		Profile:     pool.ProfileLocal,
	})
	if err != nil {
		panic(err)
	}
	defer b.Shutdown()

	b.SetLoad(3, 0)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m, ok := a.Member("b"); ok && m.Sessions == 3 {
			break
		}
	}
	for _, m := range a.Members() {
		fmt.Println(m.Name, m.ClientAddr, m.Sessions)
	}
	least, _ := a.LeastLoaded()
	fmt.Println("least loaded:", least.Name)
	// Output:
	// a 127.0.0.1:7001 0
	// b 127.0.0.1:7002 3
	// least loaded: a
}
