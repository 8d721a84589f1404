package netplane

import (
	"context"
	"net"
	"net/netip"

	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// EndpointSettings returns container c's networks as docker inspect shows
// them: the settings given at create or connect, plus its address, gateway,
// MAC and endpoint ID on each network while it runs. legacyAliases (API
// before 1.45) adds the short ID and hostname to Aliases as older dockers
// did; newer ones list them in DNSNames.
func (p *Plane) EndpointSettings(ctx context.Context, c *engine.Container, legacyAliases bool) (map[string]*network.EndpointSettings, error) {
	out := map[string]*network.EndpointSettings{}
	if len(c.Networks) == 0 {
		return out, nil
	}
	var nets []*Network
	if running(c) {
		var err error
		if nets, err = p.list(ctx, c.Namespace, false); err != nil {
			return nil, err
		}
	}
	byID := map[string]*Network{}
	for _, n := range nets {
		byID[n.ID] = n
	}
	for name, es := range c.Networks {
		s := es.Copy()
		n := byID[es.NetworkID]
		var ep *Endpoint
		if n != nil {
			ep = n.Endpoints[c.ID]
		}
		if ep != nil {
			s.EndpointID = ep.ID
			s.IPAddress, _ = netip.ParseAddr(ep.IP)
			s.Gateway, _ = netip.ParseAddr(n.Gateway)
			s.IPPrefixLen = prefixLen(n)
			if hw, err := net.ParseMAC(ep.MAC); err == nil {
				s.MacAddress = network.HardwareAddr(hw)
			}
			if n.userDefined() {
				extra := []string{ShortID(c.ID)}
				if h := c.Config.Hostname; h != "" && h != ShortID(c.ID) {
					extra = append(extra, h)
				}
				if legacyAliases {
					s.Aliases = dedupe(append(append([]string{}, s.Aliases...), extra...))
				} else {
					s.DNSNames = dedupe(append(append([]string{c.Name}, s.Aliases...), extra...))
				}
			}
		}
		out[name] = s
	}
	return out, nil
}

// EndpointCount is how many containers run on network n.
func (n *Network) EndpointCount() int { return len(n.Endpoints) }
