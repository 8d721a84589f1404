package netplane

import (
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sockerless/sockerless/agent/proto"
)

// view builds the network view of container id from its namespace's
// networks; spec is its own part (nil: taken from its endpoints).
func (p *Plane) view(ns, id string, nets []*Network, spec *Spec) proto.NetworkView {
	type membership struct {
		n  *Network
		ep *Endpoint
	}
	var mine []membership
	for _, n := range nets {
		if ep := n.Endpoints[id]; ep != nil {
			mine = append(mine, membership{n, ep})
			if spec == nil {
				spec = ep.Spec
			}
		}
	}
	if spec == nil {
		spec = &Spec{}
	}
	sort.Slice(mine, func(i, j int) bool {
		if !mine[i].ep.Attached.Equal(mine[j].ep.Attached) {
			return mine[i].ep.Attached.Before(mine[j].ep.Attached)
		}
		return mine[i].n.Name < mine[j].n.Name
	})
	v := proto.NetworkView{
		DNSServers: spec.DNSServers, DNSSearch: spec.DNSSearch, DNSOptions: spec.DNSOptions,
	}
	// /etc/hosts as docker lays it out after the localhost lines: extra
	// hosts, legacy links (default bridge), the container's own addresses.
	v.Hosts = append(v.Hosts, spec.ExtraHosts...)
	names := map[string][]string{}
	addName := func(name, ip string) {
		k := strings.ToLower(strings.TrimSuffix(name, "."))
		if k != "" && !slices.Contains(names[k], ip) {
			names[k] = append(names[k], ip)
		}
	}
	for _, l := range spec.Links {
		for _, m := range mine {
			t := m.n.Endpoints[l.Container]
			if t == nil {
				continue
			}
			if m.n.userDefined() {
				addName(l.Alias, t.IP) // a container-scoped alias
			} else {
				v.Hosts = append(v.Hosts, proto.HostEntry{IP: t.IP, Names: dedupe([]string{l.Alias, ShortID(l.Container), l.Name})})
			}
		}
	}
	self := hostNames(spec)
	for _, m := range mine {
		v.Hosts = append(v.Hosts, proto.HostEntry{IP: m.ep.IP, Names: self})
	}
	// Ports this container declares or listens on are never bound for
	// peers: 127.0.0.0/8 is one loopback, and its own server binds them.
	skip := map[int]bool{}
	for _, m := range mine {
		for _, port := range m.ep.Ports {
			skip[port] = true
		}
		for _, port := range m.ep.Listening {
			skip[port] = true
		}
		break
	}
	seen := map[string]bool{}
	for _, m := range mine {
		if m.n.userDefined() {
			v.DNS = true
		}
		for _, peer := range sortedEndpoints(m.n) {
			if m.n.userDefined() {
				for _, name := range dnsNames(peer) {
					addName(name, peer.IP)
					addName(name+"."+m.n.Name, peer.IP)
				}
			}
			if peer.Container == id {
				continue
			}
			for _, port := range peerPorts(peer) {
				addr := net.JoinHostPort(peer.IP, strconv.Itoa(port))
				if skip[port] || seen[addr] {
					continue
				}
				seen[addr] = true
				v.Listen = append(v.Listen, proto.ListenAddr{Addr: addr, Container: peer.Container})
			}
		}
	}
	if spec.HostGateway && p.cfg.HostPorts != nil {
		for _, port := range p.cfg.HostPorts(ns) {
			if skip[port] {
				continue
			}
			v.Listen = append(v.Listen, proto.ListenAddr{Addr: net.JoinHostPort(HostGateway.String(), strconv.Itoa(port)), Host: true, Port: port})
		}
	}
	if len(names) > 0 {
		v.Names = names
	}
	return v
}

// hostNames are the names of a container's own /etc/hosts lines, as
// docker writes them: "host.domain host", or "host".
func hostNames(s *Spec) []string {
	if s.Domainname != "" {
		return []string{s.Hostname + "." + s.Domainname, s.Hostname}
	}
	return []string{s.Hostname}
}

// dnsNames are the names a member answers to on a user network: its
// container name, its aliases, its short ID and its hostname.
func dnsNames(ep *Endpoint) []string {
	names := []string{ep.Name}
	names = append(names, ep.Aliases...)
	names = append(names, ShortID(ep.Container))
	if ep.Spec != nil && ep.Spec.Hostname != "" {
		names = append(names, ep.Spec.Hostname)
	}
	return dedupe(names)
}

// peerPorts are the ports peers reach a member on: declared and listening.
func peerPorts(ep *Endpoint) []int {
	out := append(slices.Clone(ep.Ports), ep.Listening...)
	sort.Ints(out)
	return slices.Compact(out)
}

func sortedEndpoints(n *Network) []*Endpoint {
	out := make([]*Endpoint, 0, len(n.Endpoints))
	for _, ep := range n.Endpoints {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP < out[j].IP })
	return out
}

func dedupe(in []string) []string {
	out := in[:0:0]
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
