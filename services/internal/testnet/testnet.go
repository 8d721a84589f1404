// Package testnet is test support for the network plane's tests: small
// TCP servers on 127.0.0.1 that stand for a container's port or a port of
// the client's machine. Each closes when its test ends.
package testnet

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// Serve listens on a free port of 127.0.0.1 and runs handle for every
// connection, in a goroutine of its own, closing the connection after;
// it returns the address.
func Serve(t testing.TB, handle func(*net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

// Echo serves an echo that ends its writes when the client ends its own,
// so a half-close passes through.
func Echo(t testing.TB) string {
	return Serve(t, func(c *net.TCPConn) {
		io.Copy(c, c)
		c.CloseWrite()
	})
}

// Greeter writes text to every connection and closes it.
func Greeter(t testing.TB, text string) string {
	return Serve(t, func(c *net.TCPConn) { io.WriteString(c, text) })
}

// Port returns the port of addr ("127.0.0.1:PORT").
func Port(addr string) int {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return 0
	}
	return a.Port
}

// Parallel runs conn(i) for i in [0, n) at once and reports every error.
func Parallel(t testing.TB, n int, conn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := conn(i); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
