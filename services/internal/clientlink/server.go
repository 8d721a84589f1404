package clientlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/portbind"
)

// Timeouts of the control plane's end.
const (
	helloTimeout = 30 * time.Second
	opTimeout    = 30 * time.Second
	// awaitLink is how long a bind waits for its client's link (a
	// forwarder reconnecting after a control plane restart).
	awaitLink = 10 * time.Second
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Namespace is the namespace of a link's request (nil: the default).
	Namespace func(*http.Request) string
	// Dial connects a connection accepted on a published port of client
	// (KindPort); an error matching syscall.ECONNREFUSED refuses it.
	Dial func(ctx context.Context, ns, client, container string, port int) (net.Conn, error)
	// DialUDP opens a flow of datagrams to a published UDP port, framed
	// (proto.WriteDatagram); nil refuses UDP.
	DialUDP func(ctx context.Context, ns, client, container string, port int) (net.Conn, error)
	// Bindings lists what client must hold, sent as the sync that opens
	// every link.
	Bindings func(ctx context.Context, ns, client string) ([]portbind.Request, error)
	// OnLink, if set, hears of every link that comes up, with the ports of
	// its machine the client exposes to containers (its Hello); see
	// HostPorts.
	OnLink func(ns, client string, hostPorts []int)
	Logger *slog.Logger
}

// Server is the control plane's end of client links. Mount it at Path,
// behind the token check.
type Server struct {
	cfg ServerConfig
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	links    map[string]*link // by namespace/client
	changed  chan struct{}    // closed and replaced when links changes
	handlers sync.WaitGroup
}

// NewServer returns a Server.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("part", "clientlink"), links: map[string]*link{}, changed: make(chan struct{})}
}

// link is one connected client.
type link struct {
	ns, client string
	hostPorts  []int // Hello.HostPorts
	sess       *yamux.Session
	ctl        net.Conn
	log        *slog.Logger

	wmu sync.Mutex // serializes Op lines

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]chan Result
}

func key(ns, client string) string { return ns + "/" + client }

// ServeHTTP serves one link until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client := r.Header.Get(HeaderClient)
	if client == "" {
		http.Error(w, "client ID required ("+HeaderClient+")", http.StatusBadRequest)
		return
	}
	ns := engine.DefaultNamespace
	if s.cfg.Namespace != nil {
		ns = s.cfg.Namespace(r)
	}
	if !s.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	log := s.log.With("client", client)
	sess, err := wsmux.Mux(ws, false, log)
	if err != nil {
		ws.CloseNow()
		return
	}
	defer sess.Close()
	stop := context.AfterFunc(r.Context(), func() { sess.Close() })
	defer stop()

	l, err := s.greet(r.Context(), sess, ns, client, log)
	if err != nil {
		log.Warn("client link refused", "err", err)
		return
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		l.readResults()
		sess.Close()
	}()
	if err := s.sync(r.Context(), l); err != nil {
		log.Warn("client link: first sync failed", "err", err)
		return
	}
	s.register(l)
	defer s.unregister(l)
	log.Info("client link up", "exposeHostPorts", l.hostPorts)
	if s.cfg.OnLink != nil {
		s.cfg.OnLink(l.ns, l.client, l.hostPorts)
	}
	wsmux.ServeStreams(sess, func(st net.Conn) { s.serveStream(l, st) })
	<-readDone
	log.Info("client link down")
}

func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// greet reads the Hello on the control stream.
func (s *Server) greet(ctx context.Context, sess *yamux.Session, ns, client string, log *slog.Logger) (*link, error) {
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		st, err := sess.AcceptStream()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		ch <- accepted{c: proto.StreamConn(st)}
	}()
	var ctl net.Conn
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, fmt.Errorf("control stream: %w", a.err)
		}
		ctl = a.c
	case <-time.After(helloTimeout):
		return nil, errors.New("no control stream")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_ = ctl.SetReadDeadline(time.Now().Add(helloTimeout))
	var h Hello
	if err := proto.ReadLine(ctl, &h); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	_ = ctl.SetReadDeadline(time.Time{})
	if h.Client != client {
		return nil, fmt.Errorf("hello from client %q on the link of %q", h.Client, client)
	}
	return &link{ns: ns, client: client, hostPorts: h.HostPorts, sess: sess, ctl: ctl, log: log, pending: map[uint64]chan Result{}}, nil
}

// sync tells the client everything it must hold.
func (s *Server) sync(ctx context.Context, l *link) error {
	var reqs []portbind.Request
	if s.cfg.Bindings != nil {
		var err error
		if reqs, err = s.cfg.Bindings(ctx, l.ns, l.client); err != nil {
			return fmt.Errorf("list bindings: %w", err)
		}
	}
	res, err := l.request(ctx, Op{Op: OpSync, Sync: reqs})
	if err != nil {
		return err
	}
	for id, msg := range res.Errors {
		l.log.Warn("published ports not bound again after reconnecting", "container", id, "err", msg)
	}
	return nil
}

func (s *Server) register(l *link) {
	s.mu.Lock()
	old := s.links[key(l.ns, l.client)]
	s.links[key(l.ns, l.client)] = l
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if old != nil {
		old.sess.Close()
	}
}

func (s *Server) unregister(l *link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links[key(l.ns, l.client)] == l {
		delete(s.links, key(l.ns, l.client))
	}
}

// serveStream carries one connection accepted on a published port.
func (s *Server) serveStream(l *link, st net.Conn) {
	open, err := proto.ServeStream(st, opTimeout, func(open proto.MeshOpen) (net.Conn, error) {
		if open.Kind != KindPort || s.cfg.Dial == nil {
			return nil, fmt.Errorf("the control plane does not serve %q streams from clients", open.Kind)
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if open.Network == "udp" {
			if s.cfg.DialUDP == nil {
				return nil, fmt.Errorf("the control plane does not carry UDP")
			}
			return s.cfg.DialUDP(ctx, l.ns, l.client, open.Container, open.Port)
		}
		return s.cfg.Dial(ctx, l.ns, l.client, open.Container, open.Port)
	})
	if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		l.log.Info("published port connection not carried", "container", open.Container, "port", open.Port, "err", err)
	}
}

// await returns the link of client, waiting while ctx lasts.
func (s *Server) await(ctx context.Context, ns, client string) (*link, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errors.New("control plane is shutting down")
		}
		l := s.links[key(ns, client)]
		ch := s.changed
		s.mu.Unlock()
		if l != nil && !l.sess.IsClosed() {
			return l, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("the client %s that created this container is not connected (is its forwarder running?)", client)
		}
	}
}

// Bind asks client's machine to bind req and returns the bindings made; a
// port it cannot bind is a *portbind.BindError. It waits a little for a client
// whose link is down.
func (s *Server) Bind(ctx context.Context, ns, client string, req portbind.Request) (network.PortMap, error) {
	actx, cancel := context.WithTimeout(ctx, awaitLink)
	l, err := s.await(actx, ns, client)
	cancel()
	if err != nil {
		return nil, err
	}
	res, err := l.request(ctx, Op{Op: OpBind, Bind: &req})
	if err != nil {
		return nil, err
	}
	if res.Error != "" {
		return nil, &portbind.BindError{Err: errors.New(res.Error)}
	}
	return res.Ports, nil
}

// Release asks client's machine to release container's ports of run (or
// earlier). A client that is not connected holds nothing it will keep: the
// sync of its next link releases it.
func (s *Server) Release(ctx context.Context, ns, client, container string, run uint32) error {
	s.mu.Lock()
	l := s.links[key(ns, client)]
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	res, err := l.request(ctx, Op{Op: OpRelease, Container: container, Run: run})
	if err != nil {
		return err
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

// DialHost connects to port on client's machine (host.docker.internal),
// if its user exposed it; otherwise the error matches proto.ErrRefused.
func (s *Server) DialHost(ctx context.Context, ns, client string, port int) (net.Conn, error) {
	l, err := s.await(ctx, ns, client)
	if err != nil {
		return nil, err
	}
	st, err := l.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", client, err)
	}
	return proto.DialStream(ctx, st, proto.MeshOpen{Kind: proto.MeshHost, Port: port})
}

// DialBind opens the sync of a host bind on client's machine (open is a
// proto.MeshBind naming the bind's source), waiting a little for a
// client whose link is down.
func (s *Server) DialBind(ctx context.Context, ns, client string, open proto.MeshOpen) (net.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, awaitLink)
	l, err := s.await(actx, ns, client)
	cancel()
	if err != nil {
		return nil, err
	}
	st, err := l.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", client, err)
	}
	return proto.DialStream(ctx, st, open)
}

// HostPorts returns the ports of client's machine its user exposed to
// containers (forwarder --expose-host-port), as its current link said;
// nil while it is not connected.
func (s *Server) HostPorts(ns, client string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.links[key(ns, client)]; l != nil {
		return append([]int(nil), l.hostPorts...)
	}
	return nil
}

// Close ends every link and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	close(s.changed)
	s.changed = make(chan struct{})
	for _, l := range s.links {
		l.sess.Close()
	}
	s.mu.Unlock()
	s.handlers.Wait()
	return nil
}

// request sends op and waits for its Result.
func (l *link) request(ctx context.Context, op Op) (Result, error) {
	ch := make(chan Result, 1)
	l.mu.Lock()
	l.seq++
	op.Seq = l.seq
	l.pending[op.Seq] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, op.Seq)
		l.mu.Unlock()
	}()
	l.wmu.Lock()
	_ = l.ctl.SetWriteDeadline(time.Now().Add(opTimeout))
	err := proto.WriteLine(l.ctl, op)
	l.wmu.Unlock()
	if err != nil {
		return Result{}, fmt.Errorf("client %s: %s: %w", l.client, op.Op, err)
	}
	t := time.NewTimer(opTimeout)
	defer t.Stop()
	select {
	case res := <-ch:
		return res, nil
	case <-l.sess.CloseChan():
		return Result{}, fmt.Errorf("client %s: %s: link closed", l.client, op.Op)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-t.C:
		return Result{}, fmt.Errorf("client %s: %s: no answer in %s", l.client, op.Op, opTimeout)
	}
}

// readResults hands every Result to its request until the stream ends.
func (l *link) readResults() {
	for {
		var res Result
		if err := proto.ReadLine(l.ctl, &res); err != nil {
			return
		}
		l.mu.Lock()
		ch := l.pending[res.Seq]
		l.mu.Unlock()
		if ch != nil {
			ch <- res
		}
	}
}
