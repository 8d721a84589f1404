package portbind

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/sockerless/sockerless/agent/proto"
)

// HostPorts are the ports of the client's machine that containers may
// connect to as host.docker.internal (forwarder --expose-host-port): the
// user allows each one, as nothing else on the machine is any container's
// business.
type HostPorts struct {
	allowed map[int]bool
}

// NewHostPorts allows ports.
func NewHostPorts(ports []int) *HostPorts {
	h := &HostPorts{allowed: map[int]bool{}}
	for _, p := range ports {
		h.allowed[p] = true
	}
	return h
}

// Dial connects to 127.0.0.1:port if port is allowed. A port that is not
// allowed is refused (an error matching proto.ErrRefused), as a closed
// port would be.
func (h *HostPorts) Dial(ctx context.Context, port int) (net.Conn, error) {
	if h == nil || !h.allowed[port] {
		return nil, fmt.Errorf("port %d of the client's machine is not exposed to containers (--expose-host-port): %w", port, proto.ErrRefused)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// ParsePorts reads --expose-host-port values: TCP port numbers.
func ParsePorts(vals []string) ([]int, error) {
	var out []int
	for _, v := range vals {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("want a TCP port (1-65535), got %q", v)
		}
		out = append(out, n)
	}
	return out, nil
}
