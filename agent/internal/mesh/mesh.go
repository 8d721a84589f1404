// Package mesh is the agent's end of the mesh: the second WebSocket to the
// hub (proto.MeshPath) that carries every TCP connection between the
// container and anything else, one yamux stream per connection (see
// agent/proto's mux.go and meshio.go).
//
// The hub opens proto.MeshDial streams (a published port, or a peer's
// connection to this container): the agent dials the address inside the
// instance and splices. The agent opens streams with Dial (a process of the
// container connecting to a peer, to the client's machine, or to the
// Docker socket); the hub routes them.
//
// The mesh is a connection of its own, apart from the control session, so
// bulk traffic never delays logs and exit codes. Like the session it dials
// again with backoff whenever it drops; connections it carried end then.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
)

// Config configures a Mesh. Zero durations take the defaults noted.
type Config struct {
	// CallbackURL is the hub's base URL (ws:// or wss://); the mesh dials
	// CallbackURL + proto.MeshPath.
	CallbackURL string
	ContainerID string
	// Secret authenticates the agent, as on the control session; it is
	// never logged.
	Secret string
	Logger *slog.Logger

	DialTimeout time.Duration // one dial of the hub, or of an address inside; default 10s
	MinBackoff  time.Duration // first redial delay, default 100ms
	MaxBackoff  time.Duration // longest redial delay, default 2s
}

// Mesh keeps the mesh connection up and serves its streams.
type Mesh struct {
	cfg Config
	url string
	log *slog.Logger

	mu      sync.Mutex
	sess    *yamux.Session // nil while disconnected
	changed chan struct{}  // closed and replaced when sess changes
}

// New returns a Mesh; Run connects it.
func New(cfg Config) *Mesh {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.MinBackoff, 100*time.Millisecond)
	def(&cfg.MaxBackoff, 2*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Mesh{
		cfg:     cfg,
		url:     strings.TrimSuffix(cfg.CallbackURL, "/") + proto.MeshPath,
		log:     cfg.Logger.With("part", "mesh"),
		changed: make(chan struct{}),
	}
}

// Run keeps the mesh connected until ctx ends, then closes it and returns
// once the streams it served have ended. It never gives up: the
// control session decides when the instance ends.
func (m *Mesh) Run(ctx context.Context) {
	backoff := m.cfg.MinBackoff
	failures := 0
	for {
		sess, err := m.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%30 == 0 {
				m.log.Warn("dial hub mesh", "err", err, "retryIn", backoff)
			}
		} else {
			failures = 0
			began := time.Now()
			m.serve(ctx, sess)
			if ctx.Err() != nil {
				return
			}
			m.log.Info("mesh connection lost; dialing again")
			if time.Since(began) > m.cfg.MaxBackoff {
				backoff = m.cfg.MinBackoff
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.cfg.MaxBackoff)
	}
}

// dial opens one mesh connection.
func (m *Mesh) dial(ctx context.Context) (*yamux.Session, error) {
	dctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	sess, resp, err := wsmux.DialMux(dctx, m.url, proto.AgentHeader(m.cfg.ContainerID, m.cfg.Secret), m.log)
	if err != nil {
		return nil, proto.DialError(m.url, resp, err)
	}
	return sess, nil
}

// serve makes sess the current session and serves the streams the hub
// opens until sess ends or ctx does.
func (m *Mesh) serve(ctx context.Context, sess *yamux.Session) {
	m.setSession(sess)
	m.log.Info("mesh connected")
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	defer m.setSession(nil)
	defer sess.Close()
	wsmux.ServeStreams(sess, m.serveStream)
}

func (m *Mesh) setSession(s *yamux.Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sess = s
	close(m.changed)
	m.changed = make(chan struct{})
}

// serveStream answers one stream the hub opened.
func (m *Mesh) serveStream(st net.Conn) {
	open, err := proto.ServeStream(st, m.cfg.DialTimeout, func(open proto.MeshOpen) (net.Conn, error) {
		switch open.Kind {
		case proto.MeshDial:
			return m.dialInside(open)
		case proto.MeshArchive:
			return serveArchive(open)
		}
		return nil, fmt.Errorf("the agent does not serve %q streams", open.Kind)
	})
	if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		m.log.Debug("mesh stream", "kind", open.Kind, "addr", open.Addr, "err", err)
	}
}

// dialInside connects to open.Addr inside the instance, from open.From's
// address when one is given (so the server sees its peer's address).
func (m *Mesh) dialInside(open proto.MeshOpen) (net.Conn, error) {
	d := net.Dialer{Timeout: m.cfg.DialTimeout}
	udp := open.Network == "udp"
	if open.From != "" {
		host, _, err := net.SplitHostPort(open.From)
		if err != nil {
			host = open.From
		}
		if ip := net.ParseIP(host); ip != nil {
			if udp {
				d.LocalAddr = &net.UDPAddr{IP: ip}
			} else {
				d.LocalAddr = &net.TCPAddr{IP: ip}
			}
		}
	}
	if udp { // a flow of datagrams, framed on the stream
		to, err := net.ResolveUDPAddr("udp", open.Addr)
		if err != nil {
			return nil, err
		}
		local := "127.0.0.1:0"
		if a, ok := d.LocalAddr.(*net.UDPAddr); ok {
			local = net.JoinHostPort(a.IP.String(), "0")
		}
		pc, err := net.ListenPacket("udp", local)
		if err != nil {
			return nil, err
		}
		return proto.FramedPacketConn(pc, to), nil
	}
	c, err := d.Dial("tcp", open.Addr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Dial opens a stream to the hub with open (proto.MeshPeer, MeshHost or
// MeshDocker) and returns it once the hub has connected it, as a net.Conn
// whose CloseWrite half-closes. It waits for the mesh to be connected
// while ctx lasts. An error matching proto.ErrRefused (and
// syscall.ECONNREFUSED) means nothing listens at the far end.
func (m *Mesh) Dial(ctx context.Context, open proto.MeshOpen) (net.Conn, error) {
	sess, err := m.session(ctx)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", open.Kind, err)
	}
	st, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("mesh %s: open stream: %w", open.Kind, err)
	}
	return proto.DialStream(ctx, st, open)
}

// session returns the current session, waiting for one while ctx lasts.
func (m *Mesh) session(ctx context.Context) (*yamux.Session, error) {
	for {
		m.mu.Lock()
		s, ch := m.sess, m.changed
		m.mu.Unlock()
		if s != nil && !s.IsClosed() {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("mesh not connected: %w", ctx.Err())
		}
	}
}
