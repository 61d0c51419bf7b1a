// pthreads, Go twin of tests/bench/pthreads.c: the same modes with
// goroutines, sync.Mutex, sync.Cond, sync.RWMutex and channels.
//
//	create_join  go func + wait for it (a channel close), one at a time
//	pingpong     two goroutines hand a turn over with one Mutex, two Conds
//	mailbox      two goroutines pass a number through two one-slot
//	             mailboxes, each a Mutex and a Cond
//	contended    4 goroutines share one Mutex
//	rwlock       4 goroutines share one RWMutex, one write in 64
//	sempingpong  two goroutines hand a turn over with two semaphores; Go
//	             has no semaphore type, its idiom is a buffered channel
//	parked       KiB of RSS per goroutine blocked on one Cond
//
// RESULT <mode> <value> <unit>
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func perOp(t0 time.Time, n int) float64 {
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func createJoin(n int) float64 {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
	}
	return perOp(t0, n)
}

func pingpong(n int) {
	var mu sync.Mutex
	cv := [2]*sync.Cond{sync.NewCond(&mu), sync.NewCond(&mu)}
	turn := 0
	var wg sync.WaitGroup
	player := func(me int) {
		defer wg.Done()
		mu.Lock()
		for i := 0; i < n; i++ {
			for turn&1 != me {
				cv[me].Wait()
			}
			turn++
			cv[1-me].Signal()
		}
		mu.Unlock()
	}
	t0 := time.Now()
	wg.Add(2)
	go player(0)
	go player(1)
	wg.Wait()
	fmt.Printf("RESULT pt_pingpong %.3f ns/op\n", perOp(t0, n))
}

func contended(n int) {
	const threads = 4
	n -= n % threads
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n/threads; j++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counter != n {
		fmt.Fprintf(os.Stderr, "contended: %d increments, want %d\n", counter, n)
		os.Exit(1)
	}
	fmt.Printf("RESULT pt_contended %.3f ns/op\n", perOp(t0, n))
}

type mailbox struct {
	mu    sync.Mutex
	cv    *sync.Cond
	full  bool
	value int
}

func newMailbox() *mailbox {
	b := &mailbox{}
	b.cv = sync.NewCond(&b.mu)
	return b
}

func (b *mailbox) put(v int) {
	b.mu.Lock()
	for b.full {
		b.cv.Wait()
	}
	b.value = v
	b.full = true
	b.cv.Signal()
	b.mu.Unlock()
}

func (b *mailbox) take() int {
	b.mu.Lock()
	for !b.full {
		b.cv.Wait()
	}
	v := b.value
	b.full = false
	b.cv.Signal()
	b.mu.Unlock()
	return v
}

func mailboxes(n int) {
	box := [2]*mailbox{newMailbox(), newMailbox()}
	last := make(chan int, 1)
	t0 := time.Now()
	go func() {
		v := 0
		for i := 0; i < n; i++ {
			box[1].put(v)
			v = box[0].take()
		}
		last <- v
	}()
	go func() {
		for i := 0; i < n; i++ {
			box[0].put(box[1].take() + 1)
		}
	}()
	if v := <-last; v != n {
		fmt.Fprintf(os.Stderr, "mailbox: ended with %d, want %d\n", v, n)
		os.Exit(1)
	}
	fmt.Printf("RESULT pt_mailbox %.3f ns/op\n", perOp(t0, n))
}

func rwlock(n int) {
	const threads = 4
	n -= n % threads
	var rw sync.RWMutex
	value, writes := 0, 0
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0
			for j := 0; j < n/threads; j++ {
				if j%64 == 0 {
					rw.Lock()
					value++
					writes++
					rw.Unlock()
				} else {
					rw.RLock()
					seen += value
					rw.RUnlock()
				}
			}
			_ = seen
		}()
	}
	wg.Wait()
	want := threads * ((n/threads + 63) / 64)
	if value != want || writes != want {
		fmt.Fprintf(os.Stderr, "rwlock: %d writes, want %d\n", value, want)
		os.Exit(1)
	}
	fmt.Printf("RESULT pt_rwlock %.3f ns/op\n", perOp(t0, n))
}

func sempingpong(n int) {
	sem := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			sem[1] <- struct{}{}
			<-sem[0]
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			<-sem[1]
			sem[0] <- struct{}{}
		}
	}()
	wg.Wait()
	if len(sem[0]) != 0 || len(sem[1]) != 0 {
		fmt.Fprintln(os.Stderr, "sempingpong: a semaphore is not 0 at the end")
		os.Exit(1)
	}
	fmt.Printf("RESULT pt_sempingpong %.3f ns/op\n", perOp(t0, n))
}

func rssKiB() int {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.Atoi(f[1])
	return pages * os.Getpagesize() / 1024
}

func parked(n int) {
	var mu sync.Mutex
	wake, all := sync.NewCond(&mu), sync.NewCond(&mu)
	arrived, release := 0, false
	var wg sync.WaitGroup
	before := rssKiB()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			arrived++
			if arrived == n {
				all.Signal()
			}
			for !release {
				wake.Wait()
			}
			mu.Unlock()
		}()
	}
	mu.Lock()
	for arrived < n {
		all.Wait()
	}
	mu.Unlock()
	after := rssKiB()
	mu.Lock()
	release = true
	wake.Broadcast()
	mu.Unlock()
	wg.Wait()
	fmt.Printf("RESULT pt_parked %.3f KiB\n", float64(after-before)/float64(n))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pthreads create_join|create_join_thread|pingpong|mailbox|contended|rwlock|sempingpong|parked [SIZE]")
		os.Exit(2)
	}
	n := 10000
	if len(os.Args) > 2 {
		v, err := strconv.Atoi(os.Args[2])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "%s: size must be a positive integer, not '%s'\n", os.Args[0], os.Args[2])
			os.Exit(2)
		}
		n = v
	}
	switch os.Args[1] {
	case "create_join":
		fmt.Printf("RESULT pt_create_join %.3f ns/op\n", createJoin(n))
	case "create_join_thread": // Go's main goroutine is not tied to a thread
		fmt.Printf("RESULT pt_create_join_thread %.3f ns/op\n", createJoin(n))
	case "pingpong":
		pingpong(n)
	case "mailbox":
		mailboxes(n)
	case "contended":
		contended(n)
	case "rwlock":
		rwlock(n)
	case "sempingpong":
		sempingpong(n)
	case "parked":
		parked(n)
	default:
		fmt.Fprintf(os.Stderr, "pthreads: unknown mode '%s'\n", os.Args[1])
		os.Exit(2)
	}
}
