package netplane

import (
	"fmt"
	"net/netip"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Address ranges. Every container address is a loopback address, which a
// function instance can bind without privileges (DESIGN.md): docker's
// 172.17.0.0/16 bridge becomes 127.17.0.0/16, user networks get /16s from
// 127.18.0.0 up, then /24s of 127.1.0.0–127.16.255.0. 127.0.0.0/16 is kept
// free: 127.0.0.1 is the instance's own, 127.0.0.11 the embedded DNS.
var (
	loopback     = netip.MustParsePrefix("127.0.0.0/8")
	reserved     = netip.MustParsePrefix("127.0.0.0/16")
	bridgeSubnet = netip.MustParsePrefix("127.17.0.0/16")
	// HostGateway is where host-gateway points (--add-host
	// X:host-gateway): the default bridge's gateway, as with docker.
	HostGateway = netip.MustParseAddr("127.17.0.1")
)

// autoSubnet returns the i-th subnet of the automatic pool, false past its
// end.
func autoSubnet(i int) (netip.Prefix, bool) {
	if i < 254-18+1 { // 127.18.0.0/16 … 127.254.0.0/16
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(18 + i), 0, 0}), 16), true
	}
	i -= 254 - 18 + 1
	if i < 16*256 { // 127.1.0.0/24 … 127.16.255.0/24
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(1 + i/256), byte(i % 256), 0}), 24), true
	}
	return netip.Prefix{}, false
}

// pickSubnet returns the first automatic subnet that overlaps none of used.
func pickSubnet(used []netip.Prefix) (netip.Prefix, error) {
	for i := 0; ; i++ {
		p, ok := autoSubnet(i)
		if !ok {
			return netip.Prefix{}, engine.Errorf(engine.KindForbidden, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
		}
		if !overlapsAny(p, used) {
			return p, nil
		}
	}
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if p.Overlaps(u) {
			return true
		}
	}
	return false
}

// checkUserSubnet accepts a subnet the user asked for: inside
// 127.0.0.0/8, off 127.0.0.0/16, with room for a gateway and a container,
// overlapping no other network of the namespace.
func checkUserSubnet(p netip.Prefix, used []netip.Prefix) error {
	if !p.Addr().Is4() {
		return engine.Errorf(engine.KindInvalid, "IPv6 subnets are not supported by Sockerless (%s)", p)
	}
	if p != p.Masked() {
		return engine.Errorf(engine.KindInvalid, "invalid subnet %s : it should be %s", p, p.Masked())
	}
	if !loopback.Contains(p.Addr()) || p.Bits() < 8 {
		return engine.Errorf(engine.KindInvalid, "subnet %s is not supported by Sockerless: container addresses are loopback addresses, so a subnet must lie inside 127.0.0.0/8 (and outside 127.0.0.0/16)", p)
	}
	if p.Overlaps(reserved) {
		return engine.Errorf(engine.KindInvalid, "subnet %s overlaps 127.0.0.0/16, which Sockerless keeps for the instance's own loopback address and the embedded DNS server", p)
	}
	if p.Bits() > 30 {
		return engine.Errorf(engine.KindInvalid, "subnet %s is too small", p)
	}
	if overlapsAny(p, used) {
		return engine.Errorf(engine.KindForbidden, "Pool overlaps with other one on this address space")
	}
	return nil
}

// firstHost is the first usable address of p (docker's default gateway).
func firstHost(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// allocate returns an address of n for a new endpoint: want if given
// (docker --ip), else the lowest free one of n's range.
func allocate(n *Network, want netip.Addr) (netip.Addr, error) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("network %s has no subnet: %w", n.Name, err)
	}
	gw, _ := netip.ParseAddr(n.Gateway)
	taken := map[netip.Addr]bool{gw: true}
	for _, a := range n.AuxAddresses {
		if aux, err := netip.ParseAddr(a); err == nil {
			taken[aux] = true
		}
	}
	for _, ep := range n.Endpoints {
		if a, err := netip.ParseAddr(ep.IP); err == nil {
			taken[a] = true
		}
	}
	last := broadcast(subnet)
	if want.IsValid() {
		if !subnet.Contains(want) || want == subnet.Masked().Addr() || want == last {
			return netip.Addr{}, engine.Errorf(engine.KindInvalid, "no configured subnet or ip-range contain the IP address %s", want)
		}
		if taken[want] {
			return netip.Addr{}, engine.Errorf(engine.KindForbidden, "Address already in use")
		}
		return want, nil
	}
	pool := subnet
	if n.IPRange != "" {
		if r, err := netip.ParsePrefix(n.IPRange); err == nil {
			pool = r
		}
	}
	for a := firstHost(pool); pool.Contains(a) && a != last; a = a.Next() {
		if !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, engine.Errorf(engine.KindForbidden, "no available IPv4 addresses on this network's address pools: %s (%s)", n.Name, n.ID)
}

// macFor is the MAC address docker derives from an IPv4 address.
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// prefixLen is the prefix length of n's subnet.
func prefixLen(n *Network) int {
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return 0
	}
	return p.Bits()
}
