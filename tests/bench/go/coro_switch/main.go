// coro_switch, Go twin. Go 1.19 has no coroutines (runtime coro arrived
// with iter.Pull in Go 1.23), so this is the nearest thing Go 1.19 has: two
// goroutines handing control back and forth over a pair of unbuffered
// channels at GOMAXPROCS=1 (forced), N round trips = 2N hand-offs; a
// hand-off goes through the scheduler's run queue, a coro switch does not.
// RESULT coro_switch <ns per hand-off> ns/op
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
	to, back := make(chan struct{}), make(chan struct{})
	resumed := 0
	go func() {
		for range to {
			resumed++
			back <- struct{}{}
		}
		close(back)
	}()
	to <- struct{}{} // first round trip, before the clock
	<-back
	t0 := time.Now()
	for i := 0; i < n; i++ {
		to <- struct{}{}
		<-back
	}
	el := time.Since(t0)
	close(to)
	<-back
	if resumed != n+1 {
		fmt.Fprintf(os.Stderr, "the other goroutine ran %d times, expected %d\n", resumed, n+1)
		os.Exit(1)
	}
	fmt.Printf("RESULT coro_switch %.3f ns/op\n", float64(el.Nanoseconds())/(2*float64(n)))
}
