package netview

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// listeners holds one listener per address of the view's Listen: a
// peer's address and port, or the gateway's for a port of the client's
// machine. Each accepted connection is carried over a mesh stream.
type listeners struct {
	dial func(ctx context.Context, open proto.MeshOpen) (net.Conn, error)
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	open   map[string]*listener // by proto.ListenAddr (all fields)
	conns  sync.WaitGroup
}

type listener struct {
	la     proto.ListenAddr
	ln     net.Listener   // TCP
	pc     net.PacketConn // UDP (la.Network "udp")
	ctx    context.Context
	cancel context.CancelFunc // ends its accepted connections too
}

// udpIdle ends a peer's UDP flow after this long without a datagram, as
// Docker's userland proxy does.
const udpIdle = 90 * time.Second

func (x *listener) close() {
	x.cancel()
	if x.ln != nil {
		x.ln.Close()
	}
	if x.pc != nil {
		x.pc.Close()
	}
}

func newListeners(dial func(ctx context.Context, open proto.MeshOpen) (net.Conn, error), log *slog.Logger) *listeners {
	return &listeners{dial: dial, log: log, open: map[string]*listener{}}
}

func key(la proto.ListenAddr) string {
	host := "p"
	if la.Host {
		host = "h"
	}
	return host + "|" + la.Network + "|" + la.Addr + "|" + la.Container + "|" + strconv.Itoa(la.Port)
}

// set opens the listeners of want that are not open (again trying those
// that failed before) and closes the others, with their connections.
func (l *listeners) set(want []proto.ListenAddr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	keep := map[string]bool{}
	for _, la := range want {
		keep[key(la)] = true
	}
	for k, x := range l.open {
		if !keep[k] {
			x.close()
			delete(l.open, k)
		}
	}
	for _, la := range want {
		k := key(la)
		if l.open[k] != nil {
			continue
		}
		if la.Network == "udp" {
			l.listenUDP(k, la)
			continue
		}
		ln, err := net.Listen("tcp", la.Addr)
		if err != nil {
			// The container's own process may hold the port on a
			// wildcard address: tried again at the next view.
			l.log.Warn("listen for a peer", "addr", la.Addr, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		x := &listener{la: la, ln: ln, ctx: ctx, cancel: cancel}
		l.open[k] = x
		l.conns.Add(1)
		go func() {
			defer l.conns.Done()
			l.accept(x)
		}()
	}
}

func (l *listeners) accept(x *listener) {
	for {
		c, err := x.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.log.Warn("accept", "addr", x.la.Addr, "err", err)
			}
			return
		}
		l.conns.Add(1)
		go func() {
			defer l.conns.Done()
			l.carry(x, c)
		}()
	}
}

// carry tunnels one accepted connection over a mesh stream.
func (l *listeners) carry(x *listener, c net.Conn) {
	open := proto.MeshOpen{Kind: proto.MeshPeer, Container: x.la.Container, Addr: x.la.Addr}
	if x.la.Host {
		open = proto.MeshOpen{Kind: proto.MeshHost, Port: x.la.Port}
	}
	dctx, cancel := context.WithTimeout(x.ctx, 30*time.Second)
	remote, err := l.dial(dctx, open)
	cancel()
	if err != nil {
		l.log.Debug("mesh stream refused", "addr", x.la.Addr, "err", err)
		reset(c) // as a refused connect: the client sees a reset
		return
	}
	stop := context.AfterFunc(x.ctx, func() { c.Close(); remote.Close() })
	defer stop()
	proto.Splice(c, remote)
}

// listenUDP receives datagrams for a peer's UDP port at la.Addr and
// carries each source address's as a flow: a MeshPeer stream of frames.
// The caller holds l.mu.
func (l *listeners) listenUDP(k string, la proto.ListenAddr) {
	pc, err := net.ListenPacket("udp", la.Addr)
	if err != nil {
		l.log.Warn("listen for a peer", "addr", la.Addr, "network", "udp", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &listener{la: la, pc: pc, ctx: ctx, cancel: cancel}
	l.open[k] = x
	l.conns.Add(1)
	go func() {
		defer l.conns.Done()
		proto.ServeDatagrams(pc, udpIdle, func(net.Addr) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return l.dial(dctx, proto.MeshOpen{Kind: proto.MeshPeer, Container: la.Container, Addr: la.Addr, Network: "udp"})
		})
	}()
}

// reset closes c with a RST.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// close ends every listener and connection and waits for them.
func (l *listeners) close() {
	l.mu.Lock()
	l.closed = true
	for k, x := range l.open {
		x.close()
		delete(l.open, k)
	}
	l.mu.Unlock()
	l.conns.Wait()
}

// addrs lists the open listeners' addresses (for tests).
func (l *listeners) addrs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, x := range l.open {
		out = append(out, x.la.Addr)
	}
	return out
}
