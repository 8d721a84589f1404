package wsconn

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// KeepAliveInterval is how long an accepted tunnel may stay silent before the
// Listener's side sends a keepalive.
const KeepAliveInterval = 15 * time.Second

// Listener is a net.Listener whose connections arrive as WebSocket upgrades
// on its ServeHTTP. Serve it with an http.Server to answer HTTP requests that
// were written into tunnels.
type Listener struct {
	addr      net.Addr
	conns     chan *Conn
	done      chan struct{}
	closeOnce sync.Once
}

var _ net.Listener = (*Listener)(nil)

// NewListener returns an open Listener that reports addr as its address (nil
// means Addr("tunnel")).
func NewListener(addr net.Addr) *Listener {
	if addr == nil {
		addr = Addr("tunnel")
	}
	return &Listener{addr: addr, conns: make(chan *Conn), done: make(chan struct{})}
}

// ServeHTTP accepts a WebSocket upgrade and hands the connection to Accept.
// After Close it answers 503. Authentication is the caller's job: mount it
// behind the token check.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isDone(l.done) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"tunnel listener is closed"}` + "\n"))
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept has answered the client
	}
	c := New(ws, Options{
		LocalAddr:  localAddr(r),
		RemoteAddr: remoteAddr(r),
		KeepAlive:  KeepAliveInterval,
	})
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.close(websocket.StatusGoingAway)
	}
}

// Accept waits for the next tunnel. After Close it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting: Accept returns net.ErrClosed and ServeHTTP answers
// 503. Connections already accepted are not affected.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr returns the address given to NewListener.
func (l *Listener) Addr() net.Addr { return l.addr }

func localAddr(r *http.Request) net.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && a != nil {
		return a
	}
	return Addr("tunnel")
}

func remoteAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	if r.RemoteAddr == "" {
		return Addr("remote")
	}
	return Addr(r.RemoteAddr)
}
