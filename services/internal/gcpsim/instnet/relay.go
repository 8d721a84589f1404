package instnet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// relayDialTimeout bounds a relay's connect to the host.
	relayDialTimeout = 10 * time.Second
	// dnsTimeout bounds one relayed DNS exchange over UDP (resolvers
	// retry after a few seconds themselves).
	dnsTimeout = 5 * time.Second
	// dnsInFlight bounds the UDP queries one instance has in flight; more
	// are dropped, as a busy resolver drops them.
	dnsInFlight = 64
)

// relays joins sockets inside an instance's namespace to the same
// addresses on the host's loopback: each accepted TCP connection to a
// host connection, each UDP query to an exchange with the host's
// resolver. Close stops them all.
type relays struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	socks  map[io.Closer]struct{} // listeners and connections, closed by Close
	closed bool
}

func newRelays() *relays {
	ctx, cancel := context.WithCancel(context.Background())
	return &relays{ctx: ctx, cancel: cancel, socks: map[io.Closer]struct{}{}}
}

// track registers c to be closed by Close; false (c closed) if closing.
func (r *relays) track(c io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.socks[c] = struct{}{}
	return true
}

func (r *relays) untrack(c io.Closer) {
	r.mu.Lock()
	delete(r.socks, c)
	r.mu.Unlock()
	c.Close()
}

// Close closes every listener and relayed connection and waits for the
// relay goroutines to end.
func (r *relays) Close() {
	r.mu.Lock()
	r.closed = true
	socks := r.socks
	r.socks = nil
	r.mu.Unlock()
	r.cancel()
	for c := range socks {
		c.Close()
	}
	r.wg.Wait()
}

// serveTCP relays each connection accepted on ln to target on the host.
func (r *relays) serveTCP(ln net.Listener, target string) {
	if !r.track(ln) {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !r.track(c) {
				return
			}
			r.wg.Add(1)
			go r.joinTCP(c, target)
		}
	}()
}

// joinTCP copies bytes between in and a new connection to target until
// both directions have ended; each side's EOF becomes the other's
// half-close. A target that refuses resets in, as a refused connect would.
func (r *relays) joinTCP(in net.Conn, target string) {
	defer r.wg.Done()
	defer r.untrack(in)
	ctx, cancel := context.WithTimeout(r.ctx, relayDialTimeout)
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		if tc, ok := in.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return
	}
	if !r.track(out) {
		return
	}
	defer r.untrack(out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(out, in)
	}()
	copyHalf(in, out)
	<-done
}

// copyHalf copies src to dst (splice(2) between TCP sockets) and then
// closes dst's write side; on an error it closes both, ending the other
// direction too.
func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// serveUDP relays each datagram received on pc, a DNS query, to target on
// the host and sends the answer back to its sender.
func (r *relays) serveUDP(pc net.PacketConn, target string) {
	if !r.track(pc) {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		sem := make(chan struct{}, dnsInFlight)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			q := append([]byte(nil), buf[:n]...)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() { <-sem }()
				r.exchangeUDP(pc, from, q, target)
			}()
		}
	}()
}

// exchangeUDP sends q to target and the first answer back to from.
func (r *relays) exchangeUDP(pc net.PacketConn, from net.Addr, q []byte, target string) {
	c, err := net.Dial("udp", target)
	if err != nil || !r.track(c) {
		return
	}
	defer r.untrack(c)
	_ = c.SetDeadline(time.Now().Add(dnsTimeout))
	if _, err := c.Write(q); err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	_, _ = pc.WriteTo(buf[:n], from)
}
