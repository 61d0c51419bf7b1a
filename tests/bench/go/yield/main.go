// yield, Go twin: two goroutines ping-pong with runtime.Gosched() at
// GOMAXPROCS=1, each yielding N times; main waits in wg.Wait().
// RESULT yield <ns per Gosched> ns/op
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
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
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	fmt.Printf("RESULT yield %.3f ns/op\n", float64(el.Nanoseconds())/float64(2*n))
}
