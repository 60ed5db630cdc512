// Go twin of benches/place.rs: 64 CPU-bound goroutines started from main,
// and 50 connections opened at once against one accept loop whose handlers
// each compute, then answer. Same arithmetic loop and iteration count, so
// the wall times compare with gopark's 1-worker and 2-worker columns
// (run with GOMAXPROCS=1 and GOMAXPROCS=2).
//
// Usage: go build -o /tmp/place-go benches/go/place.go &&
//
//	GOMAXPROCS=2 /tmp/place-go [-rounds 21] [-iters 400000]
package main

import (
	"flag"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
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

func cpuRound(iters uint64) time.Duration {
	time.Sleep(50 * time.Millisecond)
	t := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			atomic.AddUint64(&sink, work(iters))
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(t)
}

func acceptRound(iters uint64) time.Duration {
	const conns = 50
	time.Sleep(50 * time.Millisecond)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	go func() {
		for i := 0; i < conns; i++ {
			c, err := l.Accept()
			if err != nil {
				panic(err)
			}
			go func(c net.Conn) {
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil {
					panic(err)
				}
				atomic.AddUint64(&sink, work(iters))
				c.Write(b)
			}(c)
		}
	}()
	t := time.Now()
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			panic(err)
		}
		cs[i] = c
	}
	for _, c := range cs {
		c.Write([]byte("x"))
	}
	b := make([]byte, 1)
	for _, c := range cs {
		if _, err := c.Read(b); err != nil {
			panic(err)
		}
	}
	d := time.Since(t)
	for _, c := range cs {
		c.Close()
	}
	return d
}

func report(name string, f func(uint64) time.Duration, rounds int, iters uint64) {
	ms := make([]float64, rounds)
	for r := range ms {
		ms[r] = float64(f(iters).Microseconds()) / 1e3
		fmt.Printf("%s round %2d: %7.1f ms\n", name, r, ms[r])
	}
	sort.Float64s(ms)
	fmt.Printf("go/%s: median %.1f ms (min %.1f, max %.1f)\n", name, ms[rounds/2], ms[0], ms[rounds-1])
}

func main() {
	rounds := flag.Int("rounds", 21, "rounds per shape")
	iters := flag.Uint64("iters", 400000, "loop iterations per goroutine")
	flag.Parse()
	report("64_cpu_bound_from_thread", cpuRound, *rounds, *iters)
	report("accept_50_cpu_bound", acceptRound, *rounds, *iters)
}
