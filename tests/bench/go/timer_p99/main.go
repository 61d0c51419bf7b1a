// timer_p99, Go twin: N goroutines (10,000 at full size) each time.Sleep a
// length uniform in [1 ms, 50 ms] (the C programs' sequence) and record
// its lateness; main waits in wg.Wait. Default GOMAXPROCS.
// RESULT timer_p99 <99th percentile of the lateness, microseconds> us
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// sleepNs is bench_sleep_ns of tests/bench/bench.h (splitmix64 of i).
func sleepNs(i int) time.Duration {
	z := uint64(i)*0x9e3779b97f4a7c15 + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return time.Duration(1000000 + int64(z%49000001))
}

func main() {
	n := 10000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "%s: size must be a positive integer, not '%s'\n", os.Args[0], os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	late := make([]int64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			d := sleepNs(i)
			t0 := time.Now()
			time.Sleep(d)
			late[i] = int64(time.Since(t0) - d)
			wg.Done()
		}(i)
	}
	wg.Wait()
	for i, l := range late {
		if l < 0 {
			fmt.Fprintf(os.Stderr, "time.Sleep(%d) returned %d ns early\n", sleepNs(i), -l)
			os.Exit(1)
		}
	}
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	k := (99*n + 99) / 100 // nearest rank: ceil(0.99 n)
	fmt.Printf("RESULT timer_p99 %.3f us\n", float64(late[k-1])/1000)
}
