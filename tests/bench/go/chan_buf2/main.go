// chan_buf2, Go twin: ping-pong of a counter between main and one goroutine
// over two channels of capacity 2, N round trips at GOMAXPROCS=1 (forced).
// RESULT chan_buf2 <ns per round trip> ns/op
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "%s: size must be a positive integer, not '%s'\n", os.Args[0], os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	runtime.GOMAXPROCS(1)
	ping, pong := make(chan int, 2), make(chan int, 2)
	neverPing, neverPong := make(chan int), make(chan int)
	recv := func(c, never chan int) int {
		_ = never
		return <-c
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i <= n; i++ {
			pong <- recv(ping, neverPing) + 1
		}
		close(done)
	}()
	ping <- 0 // warm-up round trip
	v := recv(pong, neverPong)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- v
		v = recv(pong, neverPong)
	}
	el := time.Since(t0)
	<-done
	if v != n+1 {
		fmt.Fprintf(os.Stderr, "counter is %d, expected %d\n", v, n+1)
		os.Exit(1)
	}
	fmt.Printf("RESULT chan_buf2 %.3f ns/op\n", float64(el.Nanoseconds())/float64(n))
}
