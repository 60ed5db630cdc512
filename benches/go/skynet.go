// Skynet in Go: the same tree and output as examples/skynet.rs, for a
// side-by-side run (docs/PERFORMANCE.md).
//
// Build and run: go build -o /tmp/skynet-go benches/go/skynet.go &&
// GOMAXPROCS=2 /tmp/skynet-go -runs 5
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

// skynet sends the sum of num .. num+size-1 to out: a leaf sends its number,
// a parent spawns div children on one unbuffered channel and adds up what
// they send.
func skynet(out chan<- uint64, num, size, div uint64) {
	if size == 1 {
		out <- num
		return
	}
	ch := make(chan uint64)
	sub := size / div
	for i := uint64(0); i < div; i++ {
		go skynet(ch, num+i*sub, sub, div)
	}
	var sum uint64
	for i := uint64(0); i < div; i++ {
		sum += <-ch
	}
	out <- sum
}

func main() {
	runs := flag.Int("runs", 5, "runs")
	size := flag.Uint64("size", 1000000, "leaves (a power of div)")
	div := flag.Uint64("div", 10, "children per node")
	flag.Parse()
	expected := *size * (*size - 1) / 2
	for run := 1; run <= *runs; run++ {
		start := time.Now()
		ch := make(chan uint64)
		go skynet(ch, 0, *size, *div)
		sum := <-ch
		ms := float64(time.Since(start).Nanoseconds()) / 1e6
		if sum != expected {
			fmt.Fprintf(os.Stderr, "skynet: wrong sum %d, want %d\n", sum, expected)
			os.Exit(1)
		}
		fmt.Printf("skynet run=%d gomaxprocs=%d size=%d div=%d sum=%d ms=%.1f\n",
			run, runtime.GOMAXPROCS(0), *size, *div, sum, ms)
	}
}
