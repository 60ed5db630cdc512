// Buffered channel, P producers and P consumers: Go's side of
// benches/chan_sync.rs's buffered_chan group (same shape: the producers
// send N/P values each, the consumers receive until the channel is closed).
//
// Build and run: go build -o /tmp/chan-mpmc-go benches/go/chan_mpmc.go &&
// GOMAXPROCS=2 /tmp/chan-mpmc-go -p 4 -cap 128 -n 2000000 -runs 5
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func run(p, capacity, n int) time.Duration {
	ch := make(chan uint64, capacity)
	per := (n + p - 1) / p
	counts := make([]int, p)
	var prod, cons sync.WaitGroup
	start := time.Now()
	prod.Add(p)
	for i := 0; i < p; i++ {
		go func() {
			defer prod.Done()
			for j := 0; j < per; j++ {
				ch <- uint64(j)
			}
		}()
	}
	cons.Add(p)
	for i := 0; i < p; i++ {
		go func(i int) {
			defer cons.Done()
			for range ch {
				counts[i]++
			}
		}(i)
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	el := time.Since(start)
	got := 0
	for _, c := range counts {
		got += c
	}
	if got != per*p {
		fmt.Fprintf(os.Stderr, "chan_mpmc: received %d of %d\n", got, per*p)
		os.Exit(1)
	}
	return el * time.Duration(n) / time.Duration(per*p)
}

func main() {
	p := flag.Int("p", 4, "producers (and as many consumers)")
	capacity := flag.Int("cap", 128, "channel capacity")
	n := flag.Int("n", 2000000, "messages per run")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	for r := 1; r <= *runs; r++ {
		el := run(*p, *capacity, *n)
		fmt.Printf("chan_mpmc run=%d gomaxprocs=%d p=%d cap=%d n=%d ns_per_msg=%.1f\n",
			r, runtime.GOMAXPROCS(0), *p, *capacity, *n, float64(el.Nanoseconds())/float64(*n))
	}
}
