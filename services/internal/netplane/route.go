package netplane

import (
	"context"
	"fmt"
	"net"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// MeshDialer opens a stream to a container's agent, which connects it to
// an address inside its instance (the hub's DialMesh).
type MeshDialer interface {
	DialMesh(ctx context.Context, agentID string, open proto.MeshOpen) (net.Conn, error)
}

// MeshRouter routes a stream an agent opened (the hub's MeshRouter).
type MeshRouter interface {
	RouteMesh(ctx context.Context, agentID string, open proto.MeshOpen) (net.Conn, error)
}

// PeerRouter routes the MeshPeer streams agents open: a process of a
// container connecting to a peer's address. It checks with the plane that
// the two share a network on which the peer has that address, whatever
// the opening agent claims, and has the peer's agent dial its own address
// there (so a server bound only to 127.0.0.1 inside is not reachable from
// peers, as under docker). Other kinds go to Next (nil: refused).
type PeerRouter struct {
	Plane  *Plane
	Dialer MeshDialer
	Next   MeshRouter
}

// RouteMesh routes one stream.
func (r PeerRouter) RouteMesh(ctx context.Context, agentID string, open proto.MeshOpen) (net.Conn, error) {
	if open.Kind != proto.MeshPeer {
		if r.Next != nil {
			return r.Next.RouteMesh(ctx, agentID, open)
		}
		return nil, fmt.Errorf("%w: no route for %s streams", proto.ErrRefused, open.Kind)
	}
	ns, from, ok := engine.SplitAgentID(agentID)
	if !ok {
		return nil, fmt.Errorf("%w: bad agent %q", proto.ErrRefused, agentID)
	}
	addr, err := r.Plane.RoutePeer(ctx, ns, from, open)
	if err != nil {
		// To the opener, as a closed port: nothing of another network is
		// reachable.
		r.Plane.log.Info("peer stream refused", "from", from, "to", open.Container, "addr", open.Addr, "err", err)
		return nil, fmt.Errorf("%w: no network shared with %s", proto.ErrRefused, ShortID(open.Container))
	}
	return r.Dialer.DialMesh(ctx, engine.AgentID(ns, open.Container), proto.MeshOpen{Kind: proto.MeshDial, Addr: addr, From: open.From})
}
