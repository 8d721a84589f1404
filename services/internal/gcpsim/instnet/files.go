package instnet

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// defaultHosts is /etc/hosts of an instance, as docker writes it before
// the container's own entries (the agent rewrites it for its network).
const defaultHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// loopbackResolvers returns the nameservers of a resolv.conf that are on
// the host's loopback (a local stub such as systemd-resolved's
// 127.0.0.53): inside an instance those addresses are its own, so the
// instance's network relays port 53 of each to the host.
func loopbackResolvers(conf []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || !a.IsLoopback() {
			continue
		}
		a = a.Unmap()
		dup := false
		for _, b := range out {
			dup = dup || a == b
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}
