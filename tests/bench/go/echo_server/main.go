// echo_server, Go twin of tests/demo/echo_server.c: a goroutine-per-
// connection TCP echo server in plain Go (the runtime's netpoller parks
// each connection's goroutine in its blocking Read). The same flags as the
// C server, so tests/bench/echo_bench.sh drives all three alike.
//
// usage: echo_server [-a ADDR] [-p PORT] [-f FILE]
//
//	-a ADDR  numeric address to listen on (default 127.0.0.1)
//	-p PORT  port, 0 = any free one (default 0)
//	-f FILE  write the bound port number to FILE (atomically)
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// The C server's read buffer; allocated per connection (it escapes to the
// heap through the net.Conn interface), as the C server's is on its stack.
const bufSize = 4096

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			// Write writes all of buf[:n] or returns an error.
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// writePortFile writes the port aside and renames it into place, so a
// script polling for the file never reads a partial number.
func writePortFile(path string, port int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func main() {
	addr := flag.String("a", "127.0.0.1", "numeric address to listen on")
	port := flag.String("p", "0", "port, 0 = any free one")
	portfile := flag.String("f", "", "write the bound port number to this file")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	// One descriptor per connection: allow as many as the hard limit (Go
	// 1.19 raises it at start-up too; this says so explicitly).
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	// SIGPIPE: the Go runtime turns a write to a closed socket into EPIPE.

	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
		os.Exit(1)
	}
	bound := ln.Addr().(*net.TCPAddr).Port
	if *portfile != "" {
		if err := writePortFile(*portfile, bound); err != nil {
			fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Printf("listening on %s\n", net.JoinHostPort(*addr, strconv.Itoa(bound)))

	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors or memory, or a client gone before
			// accept: wait a little and go on, as the C server does.
			var errno syscall.Errno
			if errors.As(err, &errno) && (errno == syscall.EMFILE || errno == syscall.ENFILE ||
				errno == syscall.ENOBUFS || errno == syscall.ENOMEM) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				continue
			}
			fmt.Fprintf(os.Stderr, "echo_server: accept: %v\n", err)
			os.Exit(1)
		}
		go serve(c)
	}
}
