package dockerapi

import (
	"net"
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
)

// inspectResponse is docker inspect's answer with the network settings
// docker 20.10 clients read (GitLab's runner, scripts using
// .NetworkSettings.IPAddress): the default bridge's address, gateway and
// MAC at the top level, beside the per-network ones.
type inspectResponse struct {
	container.InspectResponse
	NetworkSettings *networkSettings
}

type networkSettings struct {
	Bridge                 string
	SandboxID              string
	SandboxKey             string
	Ports                  network.PortMap
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*network.EndpointSettings
}

// withNetworks completes resp with c's networks.
func (s *Server) withNetworks(r *http.Request, c *engine.Container, resp container.InspectResponse) (inspectResponse, error) {
	ns := &networkSettings{Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{}}
	if old := resp.NetworkSettings; old != nil {
		ns.SandboxID, ns.SandboxKey = old.SandboxID, old.SandboxKey
		if old.Ports != nil {
			ns.Ports = old.Ports
		}
	}
	nets, err := s.networksOf(r, c)
	if err != nil {
		return inspectResponse{}, err
	}
	ns.Networks = nets
	if b := nets[netplane.Bridge]; b != nil && b.IPAddress.IsValid() {
		ns.EndpointID, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = b.EndpointID, b.IPAddress.String(), b.IPPrefixLen, b.MacAddress.String()
		if b.Gateway.IsValid() {
			ns.Gateway = b.Gateway.String()
		}
	}
	resp.NetworkSettings = nil
	return inspectResponse{InspectResponse: resp, NetworkSettings: ns}, nil
}

func parseMAC(s string) network.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return nil
	}
	return network.HardwareAddr(hw)
}
