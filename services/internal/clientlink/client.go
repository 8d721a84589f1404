package clientlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/bindsync"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
	"github.com/sockerless/sockerless/services/internal/portbind"
)

// ClientConfig configures a Client. Zero durations take the defaults noted.
type ClientConfig struct {
	// Upstream is the control plane's base URL (http or https).
	Upstream *url.URL
	// Token is sent as a bearer token; never logged.
	Token string
	// Tokens, if set, gives the bearer token of each dial instead of
	// Token (forwarder --google).
	Tokens func() (string, error)
	// ClientID names this client side (see ClientID).
	ClientID string
	// HostPorts are the ports of this machine containers may reach.
	HostPorts []int
	// AllowBind, if set, checks every bind the control plane asks to
	// sync (host path, read-only, create the source): an error refuses
	// it (the forwarder's bindguard: only what the user bound). Nil
	// serves every bind.
	AllowBind func(path string, readOnly, create bool) error
	Logger    *slog.Logger

	MinBackoff time.Duration // first redial delay, default 200ms
	MaxBackoff time.Duration // longest redial delay, default 5s
}

// Client is the forwarder's end of the link: it binds the published ports
// the control plane asks for on this machine and carries their
// connections, and connects containers to the host ports its user exposed.
type Client struct {
	cfg    ClientConfig
	url    string
	log    *slog.Logger
	binder *portbind.Binder
	hosts  *portbind.HostPorts

	mu      sync.Mutex
	sess    *yamux.Session // nil while the link is down
	changed chan struct{}
}

// NewClient returns a Client; Run connects it.
func NewClient(cfg ClientConfig) *Client {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	u := *cfg.Upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + Path
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	c := &Client{
		cfg:     cfg,
		url:     u.String(),
		log:     cfg.Logger.With("part", "clientlink"),
		hosts:   portbind.NewHostPorts(cfg.HostPorts),
		changed: make(chan struct{}),
	}
	c.binder = portbind.New(portbind.Config{Dial: c.dialPort, DialUDP: c.dialUDP, Logger: c.log})
	return c
}

// Binder returns the binder holding this client's published ports.
func (c *Client) Binder() *portbind.Binder { return c.binder }

// Run keeps the link up until ctx ends, then closes every published port
// and returns. Listeners stay open while the link is down.
func (c *Client) Run(ctx context.Context) {
	defer c.binder.Close()
	backoff := c.cfg.MinBackoff
	failures := 0
	for {
		began := time.Now()
		err := c.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > c.cfg.MaxBackoff {
			backoff, failures = c.cfg.MinBackoff, 0
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			c.log.Warn("link to the control plane down; dialing again", "err", err, "retryIn", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// connect runs one link until it ends.
func (c *Client) connect(ctx context.Context) error {
	h := http.Header{}
	h.Set(HeaderClient, c.cfg.ClientID)
	tok := c.cfg.Token
	if c.cfg.Tokens != nil {
		t, err := c.cfg.Tokens()
		if err != nil {
			return fmt.Errorf("identity token: %w", err)
		}
		tok = t
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	sess, resp, err := wsmux.DialMux(dctx, c.url, h, c.log)
	cancel()
	if err != nil {
		return proto.DialError(c.url, resp, err)
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	st, err := sess.OpenStream()
	if err != nil {
		return fmt.Errorf("control stream: %w", err)
	}
	ctl := proto.StreamConn(st)
	if err := proto.WriteLine(ctl, Hello{Client: c.cfg.ClientID, HostPorts: c.cfg.HostPorts}); err != nil {
		return err
	}
	c.setSession(sess)
	defer c.setSession(nil)
	c.log.Info("link to the control plane up", "client", c.cfg.ClientID)

	served := make(chan struct{})
	defer func() { sess.Close(); <-served }()
	go func() {
		defer close(served)
		wsmux.ServeStreams(sess, c.serveHost)
	}()
	// Ops run one at a time, in order.
	for {
		var op Op
		if err := proto.ReadLine(ctl, &op); err != nil {
			return fmt.Errorf("control stream: %w", err)
		}
		res := c.do(op)
		if err := proto.WriteLine(ctl, res); err != nil {
			return fmt.Errorf("control stream: %w", err)
		}
	}
}

// do carries out one op.
func (c *Client) do(op Op) Result {
	res := Result{Seq: op.Seq}
	switch op.Op {
	case OpBind:
		if op.Bind == nil {
			res.Error = "bind without a request"
			break
		}
		ports, err := c.binder.Bind(*op.Bind)
		if err != nil {
			res.Error = err.Error()
		}
		res.Ports = ports
	case OpRelease:
		c.binder.Release(op.Container, op.Run)
	case OpSync:
		for id, err := range c.binder.Sync(op.Sync) {
			if res.Errors == nil {
				res.Errors = map[string]string{}
			}
			res.Errors[id] = err.Error()
		}
	default:
		res.Error = fmt.Sprintf("unknown op %q", op.Op)
	}
	return res
}

// serveHost answers a stream the control plane opened: a container
// connecting to a port of this machine, or the sync of a host bind.
func (c *Client) serveHost(st net.Conn) {
	open, err := proto.ServeStream(st, opTimeout, func(open proto.MeshOpen) (net.Conn, error) {
		if open.Kind == proto.MeshBind {
			if c.cfg.AllowBind != nil {
				if err := c.cfg.AllowBind(open.Source, open.ReadOnly, open.Create); err != nil {
					c.log.Warn("bind refused", "container", open.Container, "path", open.Source, "err", err)
					return nil, err
				}
			}
			return bindsync.Serve(bindsync.Host{Path: open.Source, ReadOnly: open.ReadOnly, Create: open.Create, Logger: c.log.With("container", open.Container)})
		}
		if open.Kind != proto.MeshHost {
			return nil, fmt.Errorf("the forwarder does not serve %q streams", open.Kind)
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		return c.hosts.Dial(ctx, open.Port)
	})
	if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		c.log.Info("host connection refused", "port", open.Port, "err", err)
	}
}

func (c *Client) setSession(s *yamux.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = s
	close(c.changed)
	c.changed = make(chan struct{})
}

// dialPort carries a connection accepted on a published port: a stream to
// the control plane, which reaches the container. While the link is down
// it waits for it as long as ctx lasts.
func (c *Client) dialPort(ctx context.Context, container string, port int) (net.Conn, error) {
	return c.dialStream(ctx, proto.MeshOpen{Kind: KindPort, Container: container, Port: port})
}

// dialUDP carries a flow of datagrams of a published UDP port: a stream
// of frames to the control plane, which reaches the container.
func (c *Client) dialUDP(ctx context.Context, container string, port int) (net.Conn, error) {
	return c.dialStream(ctx, proto.MeshOpen{Kind: KindPort, Container: container, Port: port, Network: "udp"})
}

func (c *Client) dialStream(ctx context.Context, open proto.MeshOpen) (net.Conn, error) {
	var sess *yamux.Session
	for sess == nil {
		c.mu.Lock()
		s, ch := c.sess, c.changed
		c.mu.Unlock()
		if s != nil && !s.IsClosed() {
			sess = s
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("link to the control plane is down: %w", ctx.Err())
		}
	}
	st, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("link to the control plane: %w", err)
	}
	return proto.DialStream(ctx, st, open)
}
