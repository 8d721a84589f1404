package netplane

import (
	"context"
	"net"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// RoutePeer authorizes a MeshPeer stream that container from opened
// towards open.Addr of container open.Container, and returns the address
// the target's agent must dial: allowed only if both run on a network
// whose address of the target is open.Addr's IP. What the agent says is
// never trusted beyond that: a container reaches only the members of its
// networks, on their addresses there.
func (p *Plane) RoutePeer(ctx context.Context, ns, from string, open proto.MeshOpen) (string, error) {
	host, port, err := net.SplitHostPort(open.Addr)
	if err != nil || open.Container == "" || open.Container == from {
		return "", engine.Errorf(engine.KindInvalid, "bad peer stream %q to %q", open.Container, open.Addr)
	}
	// The cached list first (a connection is opened per TCP connect);
	// read again before refusing: a peer may have joined through another
	// control plane process.
	for _, fresh := range []bool{false, true} {
		nets, err := p.list(ctx, ns, fresh)
		if err != nil {
			return "", err
		}
		for _, n := range nets {
			t := n.Endpoints[open.Container]
			if t != nil && n.Endpoints[from] != nil && t.IP == host {
				return net.JoinHostPort(t.IP, port), nil
			}
		}
	}
	return "", engine.Errorf(engine.KindForbidden, "container %s shares no network with container %s at %s", ShortID(from), ShortID(open.Container), host)
}
