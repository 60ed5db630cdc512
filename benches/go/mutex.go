// Contended mutex: Go's side of benches/chan_sync.rs's mutex_8_coroutines_2w
// (same shape: 8 goroutines each lock a sync.Mutex N times, increment a
// counter under it, and every 16th time yield while holding it). Prints the
// time per lock + unlock of each run and the median.
//
// Build and run: go build -o /tmp/mutex-go benches/go/mutex.go &&
// GOMAXPROCS=2 /tmp/mutex-go -n 200000 -runs 5
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

func run(per int) float64 {
	var m sync.Mutex
	n := 0
	var wg sync.WaitGroup
	t := time.Now()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				m.Lock()
				n++
				if i%16 == 0 {
					runtime.Gosched()
				}
				m.Unlock()
			}
		}()
	}
	wg.Wait()
	e := time.Since(t)
	if n != 8*per {
		panic("lost an increment")
	}
	return float64(e.Nanoseconds()) / float64(8*per)
}

func main() {
	per := flag.Int("n", 200000, "locks per goroutine")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	var v []float64
	for r := 0; r < *runs; r++ {
		ns := run(*per)
		fmt.Printf("mutex run=%d gomaxprocs=%d ns_per_lock=%.1f\n", r+1, runtime.GOMAXPROCS(0), ns)
		v = append(v, ns)
	}
	sort.Float64s(v)
	fmt.Printf("go/mutex_8_goroutines: median %.1f ns (min %.1f, max %.1f)\n", v[len(v)/2], v[0], v[len(v)-1])
}
