// Package portbind binds a container's published ports on the client's
// machine and carries every accepted connection to the container, as
// Docker's userland proxy does. Published ports live where the docker
// client runs (DESIGN.md "The network plane"): the forwarder uses a Binder
// for its namespace's containers, and the --dev control plane uses one for
// the clients of its own unix socket.
//
// A Binder knows containers by ID and run: binding a newer run of a
// container first releases the older run's ports, and a release names the
// run it ends, so a late release never touches a newer run's ports. Each
// accepted connection is handed to Config.Dial, which reaches the
// container's port through the control plane and the container's agent,
// and the two are spliced with half-close both ways (proto.Splice).
//
// HostPorts is the other direction: which ports of the client's machine
// containers may reach (host.docker.internal), as the user allowed them.
package portbind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// dialTimeout bounds reaching the container for one accepted connection.
const dialTimeout = 30 * time.Second

// Request asks for the published ports of one run of a container.
type Request struct {
	Container string `json:"container"`
	Run       uint32 `json:"run"`
	// Ports are the bindings asked for per container port: HostIP unset
	// means every address (0.0.0.0 and ::), HostPort "" a free port, "N" a
	// port and "A-B" the first free one of a range. Bindings with an
	// address and a port (as a Binder reports them) are bound exactly.
	Ports network.PortMap `json:"ports"`
}

// BindError is a port the machine could not bind. Its text is the listen
// error, as Docker's userland proxy reports it: "listen tcp4
// 0.0.0.0:8080: bind: address already in use".
type BindError struct{ Err error }

func (e *BindError) Error() string { return e.Err.Error() }
func (e *BindError) Unwrap() error { return e.Err }

// Config configures a Binder.
type Config struct {
	// Dial connects to port of container; an error matching
	// syscall.ECONNREFUSED means nothing listens there.
	Dial func(ctx context.Context, container string, port int) (net.Conn, error)
	// DialUDP opens a flow of datagrams to UDP port of container, framed
	// on the returned connection (proto.WriteDatagram); nil: UDP ports
	// cannot be bound.
	DialUDP func(ctx context.Context, container string, port int) (net.Conn, error)
	Logger  *slog.Logger
}

// Binder holds the listeners of published ports.
type Binder struct {
	cfg Config
	log *slog.Logger

	// ctx ends with Close: dials of accepted connections stop waiting.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	bound  map[string]*binding   // by container ID
	conns  map[net.Conn]struct{} // both ends of every carried connection
	wg     sync.WaitGroup        // accept loops and connections
}

// binding is what one run of a container has bound.
type binding struct {
	run   uint32
	ports network.PortMap
	lns   []net.Listener
	to    []int // the container port of each listener
	pcs   []net.PacketConn
	pcTo  []int // the container port of each UDP socket
}

// New returns a Binder.
func New(cfg Config) *Binder {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Binder{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, bound: map[string]*binding{}, conns: map[net.Conn]struct{}{}}
}

// Bind binds req's ports and serves them, returning the bindings made.
// Binding a run that is already bound returns its bindings; binding a
// newer run releases the older one first. It fails, binding nothing, with
// a *BindError when a port cannot be bound.
func (b *Binder) Bind(req Request) (network.PortMap, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("port binder is closed")
	}
	if cur := b.bound[req.Container]; cur != nil {
		switch {
		case cur.run == req.Run:
			return cur.ports, nil
		case cur.run > req.Run:
			return nil, fmt.Errorf("container %s: run %d is bound, not %d", req.Container, cur.run, req.Run)
		}
		b.releaseLocked(req.Container)
	}
	for p := range req.Ports {
		if p.Proto() == network.UDP && b.cfg.DialUDP == nil {
			return nil, fmt.Errorf("published port %s: UDP is not carried here", p)
		}
	}
	bd, err := listenAll(req.Ports)
	if err != nil {
		return nil, &BindError{Err: err}
	}
	bd.run = req.Run
	b.bound[req.Container] = bd
	for i, ln := range bd.lns {
		b.wg.Add(1)
		go b.serve(ln, req.Container, bd.to[i])
	}
	for i, pc := range bd.pcs {
		b.wg.Add(1)
		go b.serveUDP(pc, req.Container, bd.pcTo[i])
	}
	b.log.Info("published ports bound", "container", req.Container, "run", req.Run, "ports", describe(bd.ports))
	return bd.ports, nil
}

// Release closes the listeners of container if they belong to run or an
// earlier run. Connections already accepted go on until their ends close
// them (the container's end closes when it stops).
func (b *Binder) Release(container string, run uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.bound[container]; cur != nil && cur.run <= run {
		b.releaseLocked(container)
		b.log.Info("published ports released", "container", container, "run", run)
	}
}

func (b *Binder) releaseLocked(container string) {
	for _, ln := range b.bound[container].lns {
		ln.Close()
	}
	for _, pc := range b.bound[container].pcs {
		pc.Close()
	}
	delete(b.bound, container)
}

// Sync makes the bound set exactly reqs: a container bound for the same
// run keeps its listeners untouched (connections go on), the others are
// bound (their Ports are usually the exact bindings recorded earlier), and
// containers not in reqs are released. It returns the error of every
// request that could not be bound.
func (b *Binder) Sync(reqs []Request) map[string]error {
	want := map[string]bool{}
	for _, r := range reqs {
		want[r.Container] = true
	}
	b.mu.Lock()
	for id := range b.bound {
		if !want[id] {
			b.releaseLocked(id)
		}
	}
	b.mu.Unlock()
	errs := map[string]error{}
	for _, r := range reqs {
		if _, err := b.Bind(r); err != nil {
			errs[r.Container] = err
		}
	}
	return errs
}

// Bound returns the bindings of container's current run (nil if none).
func (b *Binder) Bound(container string) (uint32, network.PortMap) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.bound[container]; cur != nil {
		return cur.run, cur.ports
	}
	return 0, nil
}

// Close closes every listener and both ends of every connection, and
// waits for them.
func (b *Binder) Close() error {
	b.cancel()
	b.mu.Lock()
	b.closed = true
	for id := range b.bound {
		b.releaseLocked(id)
	}
	for c := range b.conns {
		// A stream's end only half-closes: the deadline ends its reads.
		_ = c.SetDeadline(time.Now())
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// serve accepts connections on ln for port of container until ln closes.
func (b *Binder) serve(ln net.Listener, container string, port int) {
	defer b.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		b.mu.Lock()
		closed := b.closed
		if !closed {
			b.wg.Add(1)
		}
		b.mu.Unlock()
		if closed {
			c.Close()
			return
		}
		go func() {
			defer b.wg.Done()
			b.carry(c, container, port)
		}()
	}
}

// track records both ends of a carried connection, so Close can end it;
// false once the Binder is closed.
func (b *Binder) track(c ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, x := range c {
		b.conns[x] = struct{}{}
	}
	return true
}

func (b *Binder) untrack(c ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, x := range c {
		delete(b.conns, x)
	}
}

// carry connects one accepted connection to the container. When nothing
// answers there the connection is closed, as Docker's userland proxy
// closes it (the client reads an empty reply, or a reset when it had sent
// bytes the proxy never read).
func (b *Binder) carry(c net.Conn, container string, port int) {
	ctx, cancel := context.WithTimeout(b.ctx, dialTimeout)
	remote, err := b.cfg.Dial(ctx, container, port)
	cancel()
	if err != nil {
		if !errors.Is(err, syscall.ECONNREFUSED) && b.ctx.Err() == nil {
			b.log.Info("published port: container not reached", "container", container, "port", port, "err", err)
		}
		c.Close()
		return
	}
	if !b.track(c, remote) {
		c.Close()
		remote.Close()
		return
	}
	defer b.untrack(c, remote)
	proto.Splice(c, remote)
}

// listenAll binds every wanted binding, or nothing.
func listenAll(want network.PortMap) (*binding, error) {
	bd := &binding{ports: network.PortMap{}}
	ok := false
	defer func() {
		if !ok {
			for _, ln := range bd.lns {
				ln.Close()
			}
			for _, pc := range bd.pcs {
				pc.Close()
			}
		}
	}()
	// Container ports in order, so that errors and ports are stable.
	keys := make([]network.Port, 0, len(want))
	for p := range want {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Num() != keys[j].Num() {
			return keys[i].Num() < keys[j].Num()
		}
		return keys[i].Proto() < keys[j].Proto()
	})
	for _, p := range keys {
		for _, w := range want[p] {
			if p.Proto() == network.UDP {
				pcs, got, err := listenOneUDP(w)
				if err != nil {
					return nil, err
				}
				for i, pc := range pcs {
					bd.pcs = append(bd.pcs, pc)
					bd.pcTo = append(bd.pcTo, int(p.Num()))
					bd.ports[p] = append(bd.ports[p], got[i])
				}
				continue
			}
			lns, got, err := listenOne(w)
			if err != nil {
				return nil, err
			}
			for i, ln := range lns {
				bd.lns = append(bd.lns, ln)
				bd.to = append(bd.to, int(p.Num()))
				bd.ports[p] = append(bd.ports[p], got[i])
			}
		}
	}
	ok = true
	return bd, nil
}

// listenOne binds one wanted TCP binding (see bindOne).
func listenOne(w network.PortBinding) ([]net.Listener, []network.PortBinding, error) {
	socks, got, err := bindOne(w, func(v6 bool, addr string) (io.Closer, int, error) {
		netw := "tcp4"
		if v6 {
			netw = "tcp6"
		}
		ln, err := net.Listen(netw, addr)
		if err != nil {
			return nil, 0, err
		}
		return ln, ln.Addr().(*net.TCPAddr).Port, nil
	})
	lns := make([]net.Listener, len(socks))
	for i, s := range socks {
		lns[i] = s.(net.Listener)
	}
	return lns, got, err
}

// listenOneUDP binds one wanted UDP binding (see bindOne).
func listenOneUDP(w network.PortBinding) ([]net.PacketConn, []network.PortBinding, error) {
	socks, got, err := bindOne(w, func(v6 bool, addr string) (io.Closer, int, error) {
		netw := "udp4"
		if v6 {
			netw = "udp6"
		}
		pc, err := net.ListenPacket(netw, addr)
		if err != nil {
			return nil, 0, err
		}
		return pc, pc.LocalAddr().(*net.UDPAddr).Port, nil
	})
	pcs := make([]net.PacketConn, len(socks))
	for i, s := range socks {
		pcs[i] = s.(net.PacketConn)
	}
	return pcs, got, err
}

// bindOne binds one wanted binding with listen: on both 0.0.0.0 and ::
// (when the machine has IPv6) without an address, as Docker publishes; on
// a free port, the first free one of a range, or the port asked for.
func bindOne(w network.PortBinding, listen func(v6 bool, addr string) (io.Closer, int, error)) ([]io.Closer, []network.PortBinding, error) {
	lo, hi, err := engine.HostPortRange(w.HostPort)
	if err != nil {
		return nil, nil, err
	}
	addrs := []netip.Addr{w.HostIP}
	both := !w.HostIP.IsValid()
	if both {
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	try := func(port int) ([]io.Closer, []network.PortBinding, error) {
		var socks []io.Closer
		var got []network.PortBinding
		for _, a := range addrs {
			sock, bound, err := listen(a.Is6(), netip.AddrPortFrom(a, uint16(port)).String())
			if err != nil {
				if both && a.Is6() && noIPv6(err) {
					break // this machine has no IPv6: IPv4 only
				}
				for _, s := range socks {
					s.Close()
				}
				return nil, nil, err
			}
			port = bound // :: takes the port 0.0.0.0 got
			socks = append(socks, sock)
			got = append(got, network.PortBinding{HostIP: a, HostPort: strconv.Itoa(bound)})
		}
		return socks, got, nil
	}
	if lo == 0 {
		// A free port from the kernel's ephemeral range; when IPv6 has it
		// taken, another one.
		var last error
		for range 8 {
			socks, got, err := try(0)
			if err == nil {
				return socks, got, nil
			}
			last = err
		}
		return nil, nil, last
	}
	var last error
	for port := lo; port <= hi; port++ {
		socks, got, err := try(port)
		if err == nil {
			return socks, got, nil
		}
		last = err
	}
	return nil, nil, last
}

// noIPv6 reports whether err says the machine cannot listen on IPv6.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

// describe renders bindings for logs: "80/tcp->0.0.0.0:8080 ...".
func describe(m network.PortMap) string {
	var s []string
	for p, bs := range m {
		for _, b := range bs {
			s = append(s, fmt.Sprintf("%s->%s", p, net.JoinHostPort(b.HostIP.String(), b.HostPort)))
		}
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}
