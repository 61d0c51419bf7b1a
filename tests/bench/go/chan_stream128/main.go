// chan_stream128, Go twin: a producer goroutine sends 0..N-1 on a channel
// of capacity 128 and closes it; main receives with range. GOMAXPROCS=1
// (forced).
// RESULT chan_stream128 <ns per element> ns/op
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
	ch := make(chan int, 128)
	count, sum := 0, 0
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	for v := range ch {
		count++
		sum += v
	}
	el := time.Since(t0)
	if count != n || sum != n*(n-1)/2 {
		fmt.Fprintf(os.Stderr, "received %d values summing to %d; expected %d summing to %d\n", count, sum, n, n*(n-1)/2)
		os.Exit(1)
	}
	fmt.Printf("RESULT chan_stream128 %.3f ns/op\n", float64(el.Nanoseconds())/float64(n))
}
