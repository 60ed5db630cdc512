// Go twin of the server in benches/cpu_echo.rs: prints its address, then
// per connection writes one byte (0: Go does not say where a goroutine
// runs) and echoes each read after -iters iterations of the same
// arithmetic loop.
//
// Usage: go build -o /tmp/cpu-echo-go benches/go/cpu_echo.go &&
//
//	GO_CPU_ECHO=/tmp/cpu-echo-go cargo bench --bench cpu_echo
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

var sink uint64

func work(iters uint64) uint64 {
	x := uint64(1)
	for i := uint64(0); i < iters; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 29
	}
	return x
}

func main() {
	iters := flag.Uint64("iters", 15000, "loop iterations per message")
	flag.Parse()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			if _, err := c.Write([]byte{0}); err != nil {
				return
			}
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if *iters > 0 {
					atomic.AddUint64(&sink, work(*iters))
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}(c)
	}
}
