// The Go counterpart of examples/stall.rs: 20 goroutines sleep 10 ms in a
// loop while one more goroutine does one thing; prints how many sleepers
// stalled (a gap over 200 ms between two wake-ups) and the worst gap, in the
// same format. Builds with Go 1.19 and the standard library only.
//
// Run with: go build -o stall-go benches/go/stall.go && GOMAXPROCS=N ./stall-go ROW [-file PATH]
//
// ROW: thread-sleep (a 1 s nanosleep system call, which blocks the thread as
// std::thread::sleep does), std-read (os.ReadFile of PATH), cpu (a 2 s CPU
// loop), connect (net.Dial to slow.test, resolved by Go's own resolver).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	sleepers = 20
	period   = 10 * time.Millisecond
	stalled  = 200 * time.Millisecond
	slowName = "slow.test"
)

var sink uint64

func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1
		}
	}
	atomic.StoreUint64(&sink, x)
}

func work(row, file string, port int) error {
	switch row {
	case "thread-sleep":
		ts := syscall.NsecToTimespec(int64(time.Second))
		for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
		}
	case "std-read":
		_, err := os.ReadFile(file)
		return err
	case "cpu":
		spin(2 * time.Second)
	case "connect":
		c, err := net.Dial("tcp", net.JoinHostPort(slowName, fmt.Sprint(port)))
		if err != nil {
			return err
		}
		c.Close()
	default:
		fmt.Fprintln(os.Stderr, "unknown row", row)
		os.Exit(2)
	}
	return nil
}

func main() {
	file := flag.String("file", "/tmp/gopark-stall-1g", "the file std-read reads")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: stall-go ROW [-file PATH]")
		os.Exit(2)
	}
	row := flag.Arg(0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	var stop int32
	gaps := make([]time.Duration, sleepers)
	var wg sync.WaitGroup
	for i := 0; i < sleepers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			last := time.Now()
			for atomic.LoadInt32(&stop) == 0 {
				time.Sleep(period)
				now := time.Now()
				if g := now.Sub(last); g > gaps[i] {
					gaps[i] = g
				}
				last = now
			}
		}(i)
	}
	time.Sleep(200 * time.Millisecond)
	done := make(chan struct{})
	var took time.Duration
	var werr error
	go func() {
		t := time.Now()
		werr = work(row, *file, port)
		took = time.Since(t)
		close(done)
	}()
	<-done
	time.Sleep(100 * time.Millisecond)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	n, worst := 0, time.Duration(0)
	for _, g := range gaps {
		if g > stalled {
			n++
		}
		if g > worst {
			worst = g
		}
	}
	fmt.Printf("%s workers=%d stalled=%d/%d worst_ms=%.1f work_ms=%.0f", row, runtime.GOMAXPROCS(0),
		n, sleepers, float64(worst)/1e6, float64(took)/1e6)
	if werr != nil {
		fmt.Printf(" error=%s", strings.ReplaceAll(werr.Error(), " ", "_"))
	}
	fmt.Println()
}
