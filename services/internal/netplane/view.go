package netplane

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sockerless/sockerless/agent/proto"
)

// netIndex is what every member's view takes from one network, computed
// once per round of views: with 200 members, the names and addresses are
// built once, not once per member.
type netIndex struct {
	n     *Network
	peers []peer // by address
	// names are the DNS names of a user network's members (nil on the
	// default bridge, as docker's resolves none there); shared read-only
	// by every view that takes it whole.
	names map[string][]string

	digestOnce sync.Once
	digest     [32]byte // of names
}

type peer struct {
	ep         *Endpoint
	ports      []int
	addrs      []string // "ip:port" per port
	discovered []bool   // per port: listened on, not declared
	udpAddrs   []string // "ip:port" per declared UDP port
}

func newIndex(n *Network) *netIndex {
	x := &netIndex{n: n}
	for _, ep := range n.Endpoints {
		pp := peer{ep: ep, ports: peerPorts(ep)}
		for _, port := range pp.ports {
			pp.addrs = append(pp.addrs, net.JoinHostPort(ep.IP, strconv.Itoa(port)))
			pp.discovered = append(pp.discovered, !slices.Contains(ep.Ports, port))
		}
		for _, port := range ep.UDPPorts {
			pp.udpAddrs = append(pp.udpAddrs, net.JoinHostPort(ep.IP, strconv.Itoa(port)))
		}
		x.peers = append(x.peers, pp)
	}
	sort.Slice(x.peers, func(i, j int) bool { return x.peers[i].ep.IP < x.peers[j].ep.IP })
	if n.userDefined() {
		x.names = map[string][]string{}
		for _, pp := range x.peers {
			for _, name := range dnsNames(pp.ep) {
				addName(x.names, name, pp.ep.IP)
				addName(x.names, name+"."+n.Name, pp.ep.IP)
			}
		}
	}
	return x
}

func (x *netIndex) namesDigest() [32]byte {
	x.digestOnce.Do(func() { x.digest = digestNames(x.names) })
	return x.digest
}

func addName(m map[string][]string, name, ip string) {
	k := strings.ToLower(strings.TrimSuffix(name, "."))
	if k != "" && !slices.Contains(m[k], ip) {
		m[k] = append(m[k], ip)
	}
}

// indexes indexes every network of a namespace.
func indexes(nets []*Network) []*netIndex {
	out := make([]*netIndex, 0, len(nets))
	for _, n := range nets {
		out = append(out, newIndex(n))
	}
	return out
}

// view builds the network view of container id from its namespace's
// networks; spec is its own part (nil: taken from its endpoints).
func (p *Plane) view(ns, id string, nets []*Network, spec *Spec) proto.NetworkView {
	v, _ := p.viewOf(ns, id, indexes(nets), spec)
	return v
}

// viewOf builds container id's view from the indexed networks, and its
// digest (equal views, equal digests).
func (p *Plane) viewOf(ns, id string, idx []*netIndex, spec *Spec) (proto.NetworkView, [32]byte) {
	type membership struct {
		x  *netIndex
		ep *Endpoint
	}
	var mine []membership
	for _, x := range idx {
		if ep := x.n.Endpoints[id]; ep != nil {
			mine = append(mine, membership{x, ep})
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
		return mine[i].x.n.Name < mine[j].x.n.Name
	})
	v := proto.NetworkView{DNSServers: spec.DNSServers, DNSSearch: spec.DNSSearch, DNSOptions: spec.DNSOptions}
	// /etc/hosts as docker lays it out after the localhost lines: extra
	// hosts, legacy links (default bridge), the container's own addresses.
	v.Hosts = append(v.Hosts, spec.ExtraHosts...)
	var linkNames map[string][]string // container-scoped aliases (links on user networks)
	for _, l := range spec.Links {
		for _, m := range mine {
			t := l.target(m.x.n)
			if t == nil {
				continue
			}
			if m.x.n.userDefined() {
				if linkNames == nil {
					linkNames = map[string][]string{}
				}
				addName(linkNames, l.Alias, t.IP)
			} else {
				v.Hosts = append(v.Hosts, proto.HostEntry{IP: t.IP, Names: dedupe([]string{l.Alias, ShortID(l.Container), l.Name})})
			}
		}
	}
	self := hostNames(spec)
	for _, m := range mine {
		v.Hosts = append(v.Hosts, proto.HostEntry{IP: m.ep.IP, Names: self})
	}
	// Names: a single user network's are taken whole (shared, not
	// copied); several are merged.
	var user []*netIndex
	for _, m := range mine {
		if m.x.names != nil {
			user = append(user, m.x)
		}
	}
	v.DNS = len(user) > 0
	var namesDigest [32]byte
	switch {
	case len(user) == 1 && linkNames == nil:
		v.Names, namesDigest = user[0].names, user[0].namesDigest()
	case len(user) > 0 || linkNames != nil:
		merged := map[string][]string{}
		for _, x := range user {
			for k, ips := range x.names {
				for _, ip := range ips {
					addName(merged, k, ip)
				}
			}
		}
		for k, ips := range linkNames {
			for _, ip := range ips {
				addName(merged, k, ip)
			}
		}
		v.Names, namesDigest = merged, digestNames(merged)
	}
	// Ports this container declares or listens on are never bound for
	// peers: 127.0.0.0/8 is one loopback, and its own server binds them.
	skip, skipUDP := map[int]bool{}, map[int]bool{}
	if len(mine) > 0 {
		for _, port := range mine[0].ep.Ports {
			skip[port] = true
		}
		for _, port := range mine[0].ep.Listening {
			skip[port] = true
		}
		for _, port := range mine[0].ep.UDPPorts {
			skipUDP[port] = true
		}
	}
	var seen map[string]bool
	if len(mine) > 1 {
		seen = map[string]bool{}
	}
	for _, m := range mine {
		for _, pp := range m.x.peers {
			if pp.ep.Container == id {
				continue
			}
			for i, port := range pp.ports {
				addr := pp.addrs[i]
				if skip[port] || seen != nil && seen[addr] {
					continue
				}
				if seen != nil {
					seen[addr] = true
				}
				v.Listen = append(v.Listen, proto.ListenAddr{Addr: addr, Container: pp.ep.Container, Discovered: pp.discovered[i]})
			}
			for i, addr := range pp.udpAddrs {
				if skipUDP[pp.ep.UDPPorts[i]] || seen != nil && seen["udp|"+addr] {
					continue
				}
				if seen != nil {
					seen["udp|"+addr] = true
				}
				v.Listen = append(v.Listen, proto.ListenAddr{Addr: addr, Container: pp.ep.Container, Network: "udp"})
			}
		}
	}
	gw := map[int]bool{}
	if spec.HostGateway && p.cfg.HostPorts != nil {
		for _, port := range p.cfg.HostPorts(ns, spec.Client) {
			if !skip[port] {
				gw[port] = true
				v.Listen = append(v.Listen, proto.ListenAddr{Addr: net.JoinHostPort(HostGateway.String(), strconv.Itoa(port)), Host: true, Port: port})
			}
		}
	}
	// Siblings' published ports at the gateway: no container declares
	// them, so the agent binds them as discovered ports (never one the
	// container's own processes listen on).
	if spec.Client != "" && p.cfg.Published != nil {
		for _, port := range p.cfg.Published(ns, spec.Client) {
			if !skip[port] && !gw[port] {
				v.Listen = append(v.Listen, proto.ListenAddr{Addr: net.JoinHostPort(HostGateway.String(), strconv.Itoa(port)), Host: true, Port: port, Discovered: true})
			}
		}
	}
	return v, digestView(v, namesDigest)
}

// digestView hashes a view, its names by their digest.
func digestView(v proto.NetworkView, names [32]byte) [32]byte {
	h := sha256.New()
	for _, e := range v.Hosts {
		writeStrings(h, "h", e.IP)
		writeStrings(h, e.Names...)
	}
	flag := "0"
	if v.DNS {
		flag = "1"
	}
	writeStrings(h, "d", flag)
	h.Write(names[:])
	writeStrings(h, "s")
	writeStrings(h, v.DNSServers...)
	writeStrings(h, "q")
	writeStrings(h, v.DNSSearch...)
	writeStrings(h, "o")
	writeStrings(h, v.DNSOptions...)
	for _, l := range v.Listen {
		writeStrings(h, "l", l.Addr, l.Container, strconv.FormatBool(l.Host), strconv.Itoa(l.Port), strconv.FormatBool(l.Discovered), l.Network)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func digestNames(m map[string][]string) [32]byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		writeStrings(h, k)
		writeStrings(h, m[k]...)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// writeStrings writes each string with its length, so that no two lists
// hash alike.
func writeStrings(h hash.Hash, ss ...string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(ss)))
	h.Write(n[:])
	for _, s := range ss {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
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

func dedupe(in []string) []string {
	out := in[:0:0]
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
