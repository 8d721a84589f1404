package instance

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// applyTimeout bounds applying one network view.
const applyTimeout = 30 * time.Second

// Network gives the container the network the control plane describes
// (package netview): /etc/hosts, the embedded DNS server, listeners for
// its peers' addresses. Apply is called from the instance's loop, one view
// at a time in the order they came, the first before the process starts
// when Start carries one.
type Network interface {
	// Apply replaces the view.
	Apply(ctx context.Context, v proto.NetworkView) error
	// Close ends everything the views started.
	Close() error
}

// NetworkDeps is what an instance gives the Network it makes.
type NetworkDeps struct {
	// Dial opens a mesh stream (proto.MeshPeer, MeshHost, MeshDocker).
	Dial func(ctx context.Context, open proto.MeshOpen) (net.Conn, error)
	// Listening reports the TCP ports the container's processes listen
	// on, whenever that changes (proto.TypeListening).
	Listening func(ports []int)
	Logger    *slog.Logger
}

// applyNetwork applies v if the instance has a Network.
func (in *Instance) applyNetwork(v proto.NetworkView) error {
	if in.net == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	return in.net.Apply(ctx, v)
}
