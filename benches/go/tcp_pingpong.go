// Go twin of benches/net.rs: a TCP loopback ping-pong through one
// connection, both ends goroutines, 64-byte messages. Prints the mean round
// trip of each run and the median. Go decides where the two goroutines run;
// compare GOMAXPROCS=1 with gopark's 1-worker row and GOMAXPROCS=2 with the
// 2-worker rows.
//
// Usage: go build -o /tmp/tcp-pingpong-go benches/go/tcp_pingpong.go &&
//
//	GOMAXPROCS=2 /tmp/tcp-pingpong-go [-n 100000] [-runs 5]
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"time"
)

func run(n int) time.Duration {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := l.Accept()
		if err != nil {
			panic(err)
		}
		defer s.Close()
		buf := make([]byte, 64)
		for {
			k, err := s.Read(buf)
			if err != nil {
				return
			}
			if _, err := s.Write(buf[:k]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	msg := make([]byte, 64)
	back := make([]byte, 64)
	t := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Write(msg); err != nil {
			panic(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			panic(err)
		}
	}
	e := time.Since(t)
	c.Close()
	<-done
	return e / time.Duration(n)
}

func main() {
	n := flag.Int("n", 100000, "round trips per run")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	var rt []float64
	for i := 0; i < *runs; i++ {
		d := run(*n)
		us := float64(d.Nanoseconds()) / 1e3
		fmt.Printf("run %d: %.2f us per round trip\n", i, us)
		rt = append(rt, us)
	}
	sort.Float64s(rt)
	fmt.Printf("go/tcp_pingpong_64B: median %.2f us (min %.2f, max %.2f)\n", rt[len(rt)/2], rt[0], rt[len(rt)-1])
}
