// stall: the Go twin of tests/bench/stall.c. size goroutines each resolve
// "localhost" and sleep 1 ms, over and over, while two goroutines pass one
// byte back and forth over a socketpair for 2 s; prints the longest round
// trip.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	n := 100
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: stall NTHREADS")
		os.Exit(2)
	}
	a, _ := net.FileConn(os.NewFile(uintptr(fds[0]), "a"))
	b, _ := net.FileConn(os.NewFile(uintptr(fds[1]), "b"))
	var stop atomic.Bool
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			for !stop.Load() {
				if _, err := net.DefaultResolver.LookupHost(context.Background(), "localhost"); err != nil {
					fmt.Fprintln(os.Stderr, "stall: lookup localhost failed:", err)
					os.Exit(1)
				}
				time.Sleep(time.Millisecond)
			}
			done <- struct{}{}
		}()
	}
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := b.Read(buf); err != nil || buf[0] == 0 {
				return
			}
			b.Write(buf)
		}
	}()
	var worst time.Duration
	buf := []byte{1}
	trips := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); trips++ {
		t := time.Now()
		buf[0] = 1
		if _, err := a.Write(buf); err != nil {
			os.Exit(1)
		}
		if _, err := a.Read(buf); err != nil {
			os.Exit(1)
		}
		if rt := time.Since(t); rt > worst {
			worst = rt
		}
	}
	stop.Store(true)
	a.Write([]byte{0})
	for i := 0; i < n; i++ {
		<-done
	}
	fmt.Fprintf(os.Stderr, "stall: %d round trips, %d resolver goroutines\n", trips, n)
	fmt.Printf("RESULT resolver_stall %.1f us\n", float64(worst.Nanoseconds())/1e3)
}
