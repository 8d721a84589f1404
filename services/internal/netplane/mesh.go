package netplane

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// RoutePeer authorizes a MeshPeer stream that container from (namespace
// ns) opened towards open.Addr of container open.Container, and returns
// the target's agent and the MeshDial to send it (publish.Peers): allowed
// only if both run on a network on which the target has open.Addr's IP.
// What the agent says is never trusted beyond that: a container reaches
// only the members of its networks, on their addresses there, and the
// target's agent dials that address (so a server bound only to 127.0.0.1
// inside is not reachable from peers, as under docker). A refusal matches
// proto.ErrRefused: to the connecting process it is a closed port.
func (p *Plane) RoutePeer(ctx context.Context, ns, from string, open proto.MeshOpen) (string, proto.MeshOpen, error) {
	host, port, err := net.SplitHostPort(open.Addr)
	if err != nil || open.Container == "" || open.Container == from {
		return "", proto.MeshOpen{}, fmt.Errorf("%w: bad peer stream to %q", proto.ErrRefused, open.Addr)
	}
	// The cached list first (a stream is opened per TCP connect); read
	// again before refusing: a peer may have joined through another
	// control plane process.
	for _, fresh := range []bool{false, true} {
		nets, err := p.list(ctx, ns, fresh)
		if err != nil {
			return "", proto.MeshOpen{}, err
		}
		for _, n := range nets {
			t, f := n.Endpoints[open.Container], n.Endpoints[from]
			if t != nil && f != nil && t.IP == host {
				target := engine.AgentID(&engine.Container{Namespace: ns, ID: t.Container})
				return target, proto.MeshOpen{Kind: proto.MeshDial, Addr: net.JoinHostPort(t.IP, port), From: f.IP, Network: open.Network}, nil
			}
		}
	}
	p.log.Info("peer stream refused: no shared network", "from", from, "to", open.Container, "addr", open.Addr)
	return "", proto.MeshOpen{}, fmt.Errorf("%w: container %s shares no network with container %s at %s", proto.ErrRefused, ShortID(from), ShortID(open.Container), host)
}

// DialAddr is where a connection to port of container id is dialed
// inside its instance (publish.Config.Addr): its address on its first
// network, as docker's proxy dials the container's address; 127.0.0.1 for
// a container without one (--network none).
func (p *Plane) DialAddr(ctx context.Context, ns, id string, port int) (string, error) {
	nets, err := p.list(ctx, ns, false)
	if err != nil {
		return "", err
	}
	var first *Endpoint
	for _, n := range nets {
		if ep := n.Endpoints[id]; ep != nil && (first == nil || ep.Attached.Before(first.Attached)) {
			first = ep
		}
	}
	ip := "127.0.0.1"
	if first != nil {
		ip = first.IP
	}
	return net.JoinHostPort(ip, strconv.Itoa(port)), nil
}
