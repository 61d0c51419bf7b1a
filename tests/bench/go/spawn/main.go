// spawn, Go twin: N goroutines that do nothing, wg.Wait for all.
// RESULT spawn <ns per goroutine> ns/op
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	n := 100000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "%s: size must be a positive integer, not '%s'\n", os.Args[0], os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	el := time.Since(t0)
	fmt.Printf("RESULT spawn %.3f ns/op\n", float64(el.Nanoseconds())/float64(n))
}
