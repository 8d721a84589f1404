// Package publish is the control plane's side of published ports and of
// the client's machine as containers reach it. It implements engine.Ports
// (bind a container's published ports on the machine of the client it was
// created through, and release them) and agenthub.MeshRouter (route the
// streams agents open: to the client's machine, to peers, to the Docker
// API).
//
// A container's ports are bound by the client side recorded on it
// (engine.Container.Client): LocalClient, the --dev control plane itself
// for the clients of its unix socket (an in-process portbind.Binder), or
// a forwarder, through its link (package clientlink). Each connection
// accepted there comes back here (Dial) and goes to the container's agent
// as a proto.MeshDial stream.
//
// The control plane cannot see which ports are free on the client's
// machine, so the client side picks free host ports (-P, -p ::80) and the
// chosen ports are recorded on the container (Container.Ports).
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/bindsync"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/portbind"
)

// LocalClient is the client side of the --dev control plane's own unix
// socket: the control plane binds their ports itself.
const LocalClient = "local"

// agentWait bounds how long a connection waits for its container's agent
// (one reconnecting after a control plane restart).
const agentWait = 10 * time.Second

// Agents dials the agents of containers (agenthub.Hub).
type Agents interface {
	// DialMesh opens a stream to the agent with AgentID id.
	DialMesh(ctx context.Context, id string, open proto.MeshOpen) (net.Conn, error)
}

// Clients are the links of forwarders (clientlink.Server).
type Clients interface {
	Bind(ctx context.Context, ns, client string, req portbind.Request) (network.PortMap, error)
	Release(ctx context.Context, ns, client, container string, run uint32) error
	DialHost(ctx context.Context, ns, client string, port int) (net.Conn, error)
	// DialBind opens the sync of a host bind on client's machine
	// (open: proto.MeshBind with the bind's source).
	DialBind(ctx context.Context, ns, client string, open proto.MeshOpen) (net.Conn, error)
}

// Peers routes connections between containers (the network plane's
// networks): whether the target is a peer of the source on a network they
// share, and where to dial.
type Peers interface {
	// RoutePeer returns the AgentID of the container a MeshPeer stream of
	// container id (namespace ns) goes to and the MeshDial to send its
	// agent; an error refuses the stream.
	RoutePeer(ctx context.Context, ns, id string, open proto.MeshOpen) (target string, dial proto.MeshOpen, err error)
}

// Config configures a Plane.
type Config struct {
	Store  engine.Store
	Agents Agents
	// Clients are the forwarders' links; nil: none.
	Clients Clients
	// Local makes the control plane bind the ports of LocalClient's
	// containers itself, for LocalNamespace (default: the default
	// namespace).
	Local          bool
	LocalNamespace string
	// LocalHostPorts are the ports of this machine LocalClient's containers
	// may reach (--expose-host-port).
	LocalHostPorts []int
	// Peers routes MeshPeer streams; nil refuses them.
	Peers Peers
	// Addr is where, inside container id's instance, its port is dialed;
	// nil: 127.0.0.1:port. (Docker dials the container's address: a
	// server bound to 127.0.0.1 alone is not reachable there.)
	Addr func(ctx context.Context, ns, id string, port int) (string, error)
	// Docker serves a MeshDocker stream of container id: a connection to
	// the Docker API as that container (package dockersock); nil refuses.
	Docker func(ctx context.Context, ns, id string) (net.Conn, error)
	// OnPublished is told when the ports a namespace's containers publish
	// change (the network plane rebuilds the gateway listeners); nil: no one.
	OnPublished func(ns string)
	Logger      *slog.Logger
}

// Plane is engine.Ports and agenthub.MeshRouter.
type Plane struct {
	cfg   Config
	log   *slog.Logger
	local *portbind.Binder // nil unless cfg.Local
	hosts *portbind.HostPorts
	pub   publishedCache
}

var _ engine.Ports = (*Plane)(nil)

// New returns a Plane. Close releases its local ports.
func New(cfg Config) *Plane {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LocalNamespace == "" {
		cfg.LocalNamespace = engine.DefaultNamespace
	}
	p := &Plane{cfg: cfg, log: cfg.Logger.With("part", "publish"), hosts: portbind.NewHostPorts(cfg.LocalHostPorts)}
	if cfg.Local {
		p.local = portbind.New(portbind.Config{Logger: p.log, Dial: func(ctx context.Context, container string, port int) (net.Conn, error) {
			return p.Dial(ctx, cfg.LocalNamespace, container, port)
		}, DialUDP: func(ctx context.Context, container string, port int) (net.Conn, error) {
			return p.DialUDP(ctx, cfg.LocalNamespace, container, port)
		}})
	}
	return p
}

// SetDocker sets Config.Docker (the API is made after the Plane); call it
// before serving.
func (p *Plane) SetDocker(f func(ctx context.Context, ns, id string) (net.Conn, error)) {
	p.cfg.Docker = f
}

// Close closes the ports the control plane bound itself.
func (p *Plane) Close() error {
	if p.local != nil {
		return p.local.Close()
	}
	return nil
}

// Publish binds c's published ports for run on its client's machine.
func (p *Plane) Publish(ctx context.Context, c *engine.Container, run uint32) (network.PortMap, error) {
	req := portbind.Request{Container: c.ID, Run: run, Ports: engine.Published(c.Config, c.HostConfig)}
	var ports network.PortMap
	var err error
	switch {
	case c.Client == LocalClient && p.local != nil && c.Namespace == p.cfg.LocalNamespace:
		ports, err = p.local.Bind(req)
	case c.Client != "" && c.Client != LocalClient && p.cfg.Clients != nil:
		ports, err = p.cfg.Clients.Bind(ctx, c.Namespace, c.Client, req)
	default:
		return nil, engine.Errorf(engine.KindInvalid, "published ports: no process binds ports for the client this container was created through")
	}
	var be *portbind.BindError
	switch {
	case errors.As(err, &be):
		return nil, &engine.Error{Kind: engine.KindInternal, Message: fmt.Sprintf(
			"driver failed programming external connectivity on endpoint %s (%s): Error starting userland proxy: %s", c.Name, endpointID(c), be.Error())}
	case err != nil:
		return nil, &engine.Error{Kind: engine.KindInternal, Message: "published ports: " + err.Error()}
	}
	p.changed(c.Namespace)
	return ports, nil
}

// Unpublish releases the ports of c's run (or an earlier one).
func (p *Plane) Unpublish(ctx context.Context, c *engine.Container, run uint32) error {
	defer p.changed(c.Namespace)
	switch {
	case c.Client == LocalClient && p.local != nil:
		p.local.Release(c.ID, run)
		return nil
	case c.Client != "" && p.cfg.Clients != nil:
		return p.cfg.Clients.Release(ctx, c.Namespace, c.Client, c.ID, run)
	}
	return nil
}

// Dial connects a connection accepted on a published port of container
// (namespace ns) to the container's port, through its agent. The
// container is named by the binder of its own client, in its namespace,
// so no store read is needed per connection.
func (p *Plane) Dial(ctx context.Context, ns, container string, port int) (net.Conn, error) {
	return p.dial(ctx, ns, container, port, "")
}

// DialUDP opens a flow of datagrams to UDP port of container (namespace
// ns): a stream of frames (proto.WriteDatagram) that its agent sends to
// the port, and whose answers come back framed.
func (p *Plane) DialUDP(ctx context.Context, ns, container string, port int) (net.Conn, error) {
	return p.dial(ctx, ns, container, port, "udp")
}

func (p *Plane) dial(ctx context.Context, ns, container string, port int, netw string) (net.Conn, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if p.cfg.Addr != nil {
		var err error
		if addr, err = p.cfg.Addr(ctx, ns, container, port); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, agentWait)
	defer cancel()
	return p.cfg.Agents.DialMesh(ctx, engine.AgentID(&engine.Container{Namespace: ns, ID: container}), proto.MeshOpen{Kind: proto.MeshDial, Addr: addr, Network: netw})
}

// Bindings lists what client must hold: the ports of its running
// containers, as they were bound (the first thing a forwarder's link
// hears, so a restart of either side binds them again).
func (p *Plane) Bindings(ctx context.Context, ns, client string) ([]portbind.Request, error) {
	cs, err := p.cfg.Store.ListContainers(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []portbind.Request
	for _, c := range cs {
		if c.Client == client && len(c.Ports) > 0 && c.Run > c.ExitedRun {
			out = append(out, portbind.Request{Container: c.ID, Run: c.Run, Ports: c.Ports})
		}
	}
	return out, nil
}

// RestoreLocal binds again the ports of LocalClient's running containers
// (after a control plane restart), on the host ports they had.
func (p *Plane) RestoreLocal(ctx context.Context) error {
	if p.local == nil {
		return nil
	}
	reqs, err := p.Bindings(ctx, p.cfg.LocalNamespace, LocalClient)
	if err != nil {
		return fmt.Errorf("restore published ports: %w", err)
	}
	for id, err := range p.local.Sync(reqs) {
		p.log.Warn("published ports of a running container not bound again", "container", id, "err", err)
	}
	return nil
}

// RouteMesh routes a stream the agent of container aid opened.
func (p *Plane) RouteMesh(ctx context.Context, aid string, open proto.MeshOpen) (net.Conn, error) {
	ns, id, ok := engine.SplitAgentID(aid)
	if !ok {
		return nil, fmt.Errorf("bad agent %q", aid)
	}
	switch open.Kind {
	case proto.MeshHost:
		return p.dialHost(ctx, ns, id, open.Port)
	case proto.MeshPeer:
		if p.cfg.Peers == nil {
			return nil, fmt.Errorf("%w: no network connects this container to %s", proto.ErrRefused, open.Addr)
		}
		target, dial, err := p.cfg.Peers.RoutePeer(ctx, ns, id, open)
		if err != nil {
			return nil, err
		}
		return p.cfg.Agents.DialMesh(ctx, target, dial)
	case proto.MeshBind:
		return p.dialBind(ctx, ns, id, open.Port)
	case proto.MeshDocker:
		if p.cfg.Docker == nil {
			return nil, errors.New("this control plane serves no Docker socket inside containers")
		}
		return p.cfg.Docker(ctx, ns, id)
	}
	return nil, fmt.Errorf("unknown mesh stream kind %q", open.Kind)
}

// dialHost connects container id to port on the machine of its client
// (host.docker.internal), if that client's user exposed the port, or to
// the sibling that publishes it there (see gateway.go).
func (p *Plane) dialHost(ctx context.Context, ns, id string, port int) (net.Conn, error) {
	c, err := p.cfg.Store.GetContainer(ctx, ns, id)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if c.Client != "" {
		// A sibling's published port, reached at the gateway.
		if conn, ok, err := p.dialPublished(ctx, ns, c.Client, port); ok || err != nil {
			return conn, err
		}
	}
	switch {
	case c.Client == LocalClient && p.local != nil:
		return p.hosts.Dial(ctx, port)
	case c.Client != "" && c.Client != LocalClient && p.cfg.Clients != nil:
		return p.cfg.Clients.DialHost(ctx, ns, c.Client, port)
	}
	return nil, fmt.Errorf("%w: container %s was created without a forwarder: the client's machine is not reachable from it", proto.ErrRefused, id)
}

// dialBind opens the sync of container id's host bind number n with the
// machine of its client: the --dev control plane's own, served here, or a
// forwarder's, through its link. The bind's source comes from the store,
// never from the agent.
func (p *Plane) dialBind(ctx context.Context, ns, id string, n int) (net.Conn, error) {
	c, err := p.cfg.Store.GetContainer(ctx, ns, id)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	binds := engine.Binds(c)
	if n < 0 || n >= len(binds) {
		return nil, fmt.Errorf("container %s has no host bind %d", id, n)
	}
	b := binds[n]
	open := proto.MeshOpen{Kind: proto.MeshBind, Container: id, Port: n, Source: b.Source, ReadOnly: !b.RW, Create: b.CreateSource}
	switch {
	case c.Client == LocalClient && p.local != nil && ns == p.cfg.LocalNamespace:
		return bindsync.Serve(bindsync.Host{Path: b.Source, ReadOnly: !b.RW, Create: b.CreateSource, Logger: p.log})
	case c.Client != "" && c.Client != LocalClient && p.cfg.Clients != nil:
		return p.cfg.Clients.DialBind(ctx, ns, c.Client, open)
	}
	return nil, fmt.Errorf("container %s was created without a forwarder: no process syncs its host bind mounts", id)
}

// endpointID stands for Docker's network endpoint ID in its messages.
func endpointID(c *engine.Container) string {
	h := sha256.Sum256([]byte("endpoint/" + c.ID))
	return hex.EncodeToString(h[:])
}
