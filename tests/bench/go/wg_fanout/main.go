// wg_fanout, Go twin: R rounds; in each main adds 10,000 to a WaitGroup,
// starts 10,000 goroutines that each call wg.Done, and waits.
// RESULT wg_fanout <ns per goroutine> ns/op
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

const fanout = 10000

func main() {
	rounds := 100
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "%s: size must be a positive integer, not '%s'\n", os.Args[0], os.Args[1])
			os.Exit(2)
		}
		rounds = v
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for r := 0; r < rounds; r++ {
		wg.Add(fanout)
		for i := 0; i < fanout; i++ {
			go wg.Done()
		}
		wg.Wait()
	}
	el := time.Since(t0)
	fmt.Printf("RESULT wg_fanout %.3f ns/op\n", float64(el.Nanoseconds())/(float64(rounds)*fanout))
}
