package netview

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/sockerless/sockerless/agent/proto"
)

// localhostLines open every /etc/hosts docker writes.
const localhostLines = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

// hostsFile lays /etc/hosts out as docker does: the localhost lines, then
// the view's entries (extra hosts, links, the container's own addresses).
// withNames adds the DNS names too (sorted), for when no DNS server runs.
func hostsFile(nv proto.NetworkView, withNames bool) []byte {
	var b bytes.Buffer
	b.WriteString(localhostLines)
	for _, h := range nv.Hosts {
		fmt.Fprintf(&b, "%s\t%s\n", h.IP, strings.Join(h.Names, " "))
	}
	if withNames && nv.DNS {
		names := make([]string, 0, len(nv.Names))
		for n := range nv.Names {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			for _, ip := range nv.Names[n] {
				fmt.Fprintf(&b, "%s\t%s\n", ip, n)
			}
		}
	}
	return b.Bytes()
}

// selfIPs are the container's own addresses: the last run of /etc/hosts
// entries, which name the container itself (docker writes them last).
func selfIPs(nv proto.NetworkView) map[string]bool {
	out := map[string]bool{}
	n := len(nv.Hosts)
	if n == 0 {
		return out
	}
	last := strings.Join(nv.Hosts[n-1].Names, " ")
	for i := n - 1; i >= 0 && strings.Join(nv.Hosts[i].Names, " ") == last; i-- {
		out[nv.Hosts[i].IP] = true
	}
	return out
}

// resolvConf is what the view keeps of a resolv.conf.
type resolvConf struct {
	raw     []byte
	servers []string
	search  []string
	options []string
}

func readResolvConf(path string) resolvConf {
	raw, err := os.ReadFile(path)
	if err != nil {
		return resolvConf{}
	}
	rc := resolvConf{raw: raw}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			rc.servers = append(rc.servers, f[1])
		case "search", "domain":
			rc.search = f[1:]
		case "options":
			rc.options = append(rc.options, f[1:]...)
		}
	}
	return rc
}

// resolvConf returns the /etc/resolv.conf the view wants, or false to
// leave the instance's own alone. With the embedded DNS server it is
// docker's: the search domains, nameserver 127.0.0.11, the options with
// ndots:0 last (unless an ndots is given). Without it, the instance's own
// with --dns, --dns-search and --dns-option put in, as docker does on the
// default bridge.
func (v *View) resolvConf(nv proto.NetworkView, dnsUp bool) ([]byte, bool) {
	search := nv.DNSSearch
	if len(search) == 0 {
		search = v.orig.search
	}
	if !dnsUp {
		if len(nv.DNSServers) == 0 && len(nv.DNSSearch) == 0 && len(nv.DNSOptions) == 0 {
			if v.orig.raw == nil {
				return nil, false
			}
			return v.orig.raw, true // as it was (the view may have had DNS before)
		}
		servers, opts := nv.DNSServers, nv.DNSOptions
		if len(servers) == 0 {
			servers = v.orig.servers
		}
		if len(opts) == 0 {
			opts = v.orig.options
		}
		return resolvFile(search, servers, opts), true
	}
	host, _, _ := strings.Cut(v.cfg.DNSAddr, ":")
	opts := append([]string{}, nv.DNSOptions...)
	hasNdots := false
	for _, o := range opts {
		hasNdots = hasNdots || strings.HasPrefix(o, "ndots:")
	}
	if !hasNdots {
		opts = append(opts, "ndots:0")
	}
	return resolvFile(search, []string{host}, opts), true
}

func resolvFile(search, servers, opts []string) []byte {
	var b bytes.Buffer
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.Bytes()
}

// writeAtomic replaces path with data by a rename, so a reader never sees
// half a file; unchanged contents are not written. A path that is a mount
// point (a bind-mounted /etc/hosts cannot be renamed over) is rewritten in
// place instead.
func writeAtomic(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return writeInPlace(path, data)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil && cerr == nil {
		werr = os.Chmod(name, 0o644)
	}
	if werr != nil || cerr != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, errors.Join(werr, cerr))
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) {
			return writeInPlace(path, data)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeInPlace(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
