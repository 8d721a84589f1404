package netplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Prepare checks a new container's network settings and fills
// c.Networks (engine.Networks). Modes Sockerless cannot carry out are
// refused with a 400 naming why.
func (p *Plane) Prepare(ctx context.Context, c *engine.Container, endpoints map[string]*network.EndpointSettings) error {
	hc := c.HostConfig
	mode := string(hc.NetworkMode)
	given := mode // "default" names the bridge in the endpoints too
	switch {
	case mode == "host":
		return engine.Errorf(engine.KindInvalid, "network mode \"host\" is not supported by Sockerless: each container runs on its own function instance, which has no host network to share; publish ports (-p) or put the containers on a user network")
	case strings.HasPrefix(mode, "container:"):
		return engine.Errorf(engine.KindInvalid, "network mode %q is not supported by Sockerless: each container runs on its own function instance, and instances cannot share a network stack; put the containers on a user network and reach each other by name", mode)
	case mode == "" || mode == network.NetworkDefault:
		mode = Bridge
	}
	if err := checkExtraHosts(hc.ExtraHosts); err != nil {
		return err
	}
	if err := checkDNS(hc); err != nil {
		return err
	}
	// Only what never changes in the network is used here (its
	// endpoints are taken at start).
	primary, err := p.settled(ctx, c.Namespace, mode)
	if err != nil {
		return err
	}
	if primary.Driver == DriverHost {
		return engine.Errorf(engine.KindInvalid, "network mode \"host\" is not supported by Sockerless: each container runs on its own function instance, which has no host network to share; publish ports (-p) or put the containers on a user network")
	}
	c.Networks = map[string]*network.EndpointSettings{}
	// The endpoint settings of the mode's network, given by name or ID.
	var primaryES *network.EndpointSettings
	isPrimary := func(ref string) bool {
		return ref == mode || ref == given || ref == primary.ID || ref == primary.Name
	}
	for ref, es := range endpoints {
		if isPrimary(ref) {
			primaryES = es
		}
	}
	if err := p.attachSettings(c, primary, primaryES); err != nil {
		return err
	}
	for ref, es := range endpoints {
		if isPrimary(ref) {
			continue
		}
		n, err := p.Network(ctx, c.Namespace, ref)
		if err != nil {
			return err
		}
		if n.Driver == DriverHost || primary.Driver == DriverNull || n.Driver == DriverNull {
			return engine.Errorf(engine.KindInvalid, "container cannot be connected to multiple networks with one of the networks in private (none) mode")
		}
		if err := p.attachSettings(c, n, es); err != nil {
			return err
		}
	}
	for _, es := range c.Networks {
		if len(es.MacAddress) > 0 {
			c.Warnings = append(c.Warnings, macWarning)
			break
		}
	}
	if primary.userDefined() && len(hc.Links) > 0 {
		// As docker: on a user network, --link is a link of that network's
		// endpoint (an alias for this container alone), and its target
		// may come later.
		es := c.Networks[primary.Name]
		for _, l := range hc.Links {
			name, alias := SplitLink(l)
			if l := name + ":" + alias; !slices.Contains(es.Links, l) { // the CLI may send both
				es.Links = append(es.Links, l)
			}
		}
		hc.Links = nil
	}
	for _, l := range hc.Links {
		name, _, _ := strings.Cut(l, ":")
		if _, err := p.cfg.Containers.GetContainer(ctx, c.Namespace, strings.TrimPrefix(name, "/")); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return engine.Errorf(engine.KindNotFound, "could not get container for %s", strings.TrimPrefix(name, "/"))
			}
			return fmt.Errorf("link %s: %w", l, err)
		}
	}
	return nil
}

// macWarning: a MAC address is recorded and shown, never applied.
const macWarning = "The MAC address is shown in inspect but not applied: container addresses are loopback addresses, which have no link layer"

// attachSettings checks es for network n and records it in c.Networks.
func (p *Plane) attachSettings(c *engine.Container, n *Network, es *network.EndpointSettings) error {
	out := &network.EndpointSettings{}
	if es != nil {
		out = es.Copy()
		out.EndpointID, out.Gateway, out.IPAddress, out.IPPrefixLen, out.DNSNames = "", netip.Addr{}, netip.Addr{}, 0, nil
		out.IPv6Gateway, out.GlobalIPv6Address, out.GlobalIPv6PrefixLen = netip.Addr{}, netip.Addr{}, 0
	}
	if err := checkEndpoint(n, out); err != nil {
		return err
	}
	out.NetworkID = n.ID
	c.Networks[n.Name] = out
	return nil
}

// checkEndpoint refuses endpoint settings docker refuses on n, and those
// Sockerless does not carry out.
func checkEndpoint(n *Network, es *network.EndpointSettings) error {
	if len(es.Aliases) > 0 && !n.userDefined() {
		return engine.Errorf(engine.KindInvalid, "network-scoped alias is supported only for containers in user defined networks")
	}
	// Docker's bridge driver keeps endpoint options it does not know, and
	// shows them, without effect; so does Sockerless. Its own options
	// (com.docker.network.*) would change the endpoint: refused.
	for k := range es.DriverOpts {
		if strings.HasPrefix(k, "com.docker.network.") {
			return engine.Errorf(engine.KindInvalid, "endpoint driver option %q (--driver-opt) is not supported by Sockerless", k)
		}
	}
	if es.GwPriority != 0 {
		return engine.Errorf(engine.KindInvalid, "gateway priority (gw-priority) is not supported by Sockerless: a container has no default route to choose")
	}
	if ipam := es.IPAMConfig; ipam != nil {
		if ipam.IPv6Address.IsValid() {
			return engine.Errorf(engine.KindInvalid, "IPv6 addresses (--ip6) are not supported by Sockerless: container addresses are IPv4 loopback addresses")
		}
		if len(ipam.LinkLocalIPs) > 0 {
			return engine.Errorf(engine.KindInvalid, "link-local addresses (--link-local-ip) are not supported by Sockerless")
		}
		if ipam.IPv4Address.IsValid() {
			if !n.UserSubnet {
				return engine.Errorf(engine.KindInvalid, "user specified IP address is supported only when connecting to networks with user configured subnets")
			}
			if s, err := netip.ParsePrefix(n.Subnet); err != nil || !s.Contains(ipam.IPv4Address) {
				return engine.Errorf(engine.KindInvalid, "no configured subnet or ip-range contain the IP address %s", ipam.IPv4Address)
			}
		}
	}
	if n.Driver == DriverNull && (len(es.Aliases) > 0 || len(es.Links) > 0 || es.IPAMConfig != nil) {
		return engine.Errorf(engine.KindInvalid, "network none has no endpoint settings")
	}
	return nil
}

// checkExtraHosts accepts docker's "name:IP" (and "name=IP") entries, with
// host-gateway for IP.
func checkExtraHosts(hosts []string) error {
	for _, h := range hosts {
		name, ip, ok := splitExtraHost(h)
		if !ok || name == "" {
			return engine.Errorf(engine.KindInvalid, "invalid extra host entry: %s", h)
		}
		if ip == "host-gateway" {
			continue
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return engine.Errorf(engine.KindInvalid, "invalid IP address in add-host: %q", ip)
		}
	}
	return nil
}

// splitExtraHost splits "name:ip", "name=ip" or "name:[v6]".
func splitExtraHost(h string) (name, ip string, ok bool) {
	if n, i, found := strings.Cut(h, "="); found {
		name, ip = n, i
	} else if n, i, found := strings.Cut(h, ":"); found {
		name, ip = n, i
	} else {
		return "", "", false
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	return name, ip, true
}

// checkDNS accepts --dns addresses.
func checkDNS(hc *container.HostConfig) error {
	for _, s := range hc.DNS {
		if !s.IsValid() {
			return engine.Errorf(engine.KindInvalid, "invalid DNS server address")
		}
	}
	return nil
}
