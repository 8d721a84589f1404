package instnet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// egress is the network namespace that the internet traffic of many
// instances leaves through, with one pasta for them all (pasta keeps
// ~29 MiB of buffers resident: one per instance was 5.7 GiB for 200).
// Each instance is linked to it by a veth pair: eth0 in the instance,
// with an address of its own (v4Prefix, v6Prefix) and default routes
// through the egress namespace, which forwards to pasta's interface and
// masquerades behind pasta's (the host's) addresses. Its nftables rules
// forward only between an instance and pasta's interface and accept
// nothing from an instance for the egress namespace itself (rejected at
// once), so instances do not reach one another, as when each had a pasta
// of its own.
type egress struct {
	dir, path string
	fd        int // the namespace, open for setns; -1 once stopped
	pasta     *pasta
	v4Prefix  netip.Prefix
	ready     chan struct{} // closed once set up or failed
	err       error         // why it failed, set before ready is closed

	fdMu  sync.RWMutex    // guards fd against stop while in use
	mu    sync.Mutex      // guards used and next
	used  map[uint16]bool // slots (addresses, link names) in use
	next  uint16
	close sync.Once
}

// v6Prefix is the instances' IPv6 prefix, unique local (RFC 4193).
var v6Prefix = netip.MustParsePrefix("fd53:6f63:6b6c::/64")

// v4Candidates are the /16s instances take addresses from (RFC 2544's
// benchmarking range): the first that no route of the host overlaps.
var v4Candidates = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16"), netip.MustParsePrefix("198.19.0.0/16")}

// gateway6 is the egress side's IPv6 address on every instance's link
// (its IPv4 one is gateway4); linkName is the instance's side.
const (
	gateway6 = "fe80::1"
	linkName = "eth0"
)

// egressRules are the egress namespace's nftables rules; instances' links
// are named ve*.
const egressRules = `table inet sockerless {
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "ve*" oifname != "ve*" accept
		ct state established,related accept
		iifname "ve*" reject
	}
	chain input {
		type filter hook input priority 0;
		iifname "ve*" ct state established,related accept
		iifname "ve*" meta l4proto { icmp, ipv6-icmp } accept
		iifname "ve*" reject
	}
	chain postrouting {
		type nat hook postrouting priority 100;
		iifname "ve*" oifname != "ve*" masquerade
	}
}
`

// startEgress makes the egress namespace in dir and starts its pasta; it
// returns at once and sets up forwarding once pasta is ready.
func startEgress(dir, pastaBin string) (*egress, error) {
	v4, err := freeV4Prefix()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("egress dir: %w", err)
	}
	e := &egress{dir: dir, path: filepath.Join(dir, nsFile), fd: -1, v4Prefix: v4,
		ready: make(chan struct{}), used: map[uint16]bool{}, next: 2}
	if err := createNetns(e.path); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if e.fd, err = unix.Open(e.path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		_ = removeNetns(e.path)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open egress namespace: %w", err)
	}
	if e.pasta, err = startPasta(pastaBin, e.path, dir); err != nil {
		e.err = err
		close(e.ready)
		return e, nil
	}
	go e.setUp()
	return e, nil
}

// setUp waits for pasta and turns on forwarding and the rules.
func (e *egress) setUp() {
	defer close(e.ready)
	<-e.pasta.ready
	if e.err = e.pasta.err; e.err != nil {
		return
	}
	e.err = e.inEgress(func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("egress forwarding: %w", err)
			}
		}
		return run("nft", egressRules, "-f", "-")
	})
}

// link connects the instance namespace at nsPath (open as nsFD) to the
// egress and returns the slot to unlink it with.
func (e *egress) link(nsPath string, nsFD int) (uint16, error) {
	<-e.ready
	if e.err != nil {
		return 0, e.err
	}
	slot, err := e.take()
	if err != nil {
		return 0, err
	}
	v4, v6, veth := e.addrs(slot)
	// In the instance: eth0 with its addresses and default routes, its
	// peer created in the egress namespace.
	inst := fmt.Sprintf(`link add %s type veth peer name %s netns %s
addr add %s/32 dev %s
addr add %s/128 dev %s nodad
link set %s up
route add default via %s dev %s onlink
route add default via %s dev %s
`, linkName, veth, e.path, v4, linkName, v6, linkName, linkName, e.gateway4(), linkName, gateway6, linkName)
	// In the egress namespace: the gateway addresses on the peer and
	// routes to the instance's addresses.
	out := fmt.Sprintf(`addr add %s/32 dev %s
addr add %s/64 dev %s nodad
link set %s up
route add %s/32 dev %s
route add %s/128 dev %s
`, e.gateway4(), veth, gateway6, veth, veth, v4, veth, v6, veth)
	err = inNetns(nsFD, func() error { return run("ip", inst, "-batch", "-") })
	if err == nil {
		err = e.inEgress(func() error { return run("ip", out, "-batch", "-") })
	}
	if err != nil {
		e.unlink(slot)
		return 0, fmt.Errorf("link to the egress: %w", err)
	}
	return slot, nil
}

// unlink removes the slot's link (it may be gone with its namespace) and
// frees the slot.
func (e *egress) unlink(slot uint16) {
	_, _, veth := e.addrs(slot)
	_ = e.inEgress(func() error { return run("ip", "", "link", "del", veth) })
	e.mu.Lock()
	delete(e.used, slot)
	e.mu.Unlock()
}

// inEgress runs fn on a thread in the egress namespace, unless stopped.
func (e *egress) inEgress(fn func() error) error {
	e.fdMu.RLock()
	defer e.fdMu.RUnlock()
	if e.fd < 0 {
		return errors.New("egress: stopped")
	}
	return inNetns(e.fd, fn)
}

// take allocates a slot, round robin so that a slot's old link is long
// gone before it is used again.
func (e *egress) take() (uint16, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range 1 << 16 {
		s := e.next
		e.next++
		if s < 2 || s == 0xffff || e.used[s] {
			continue
		}
		e.used[s] = true
		return s, nil
	}
	return 0, errors.New("egress: no free address")
}

// addrs are a slot's IPv4 and IPv6 addresses and the name of its link in
// the egress namespace.
func (e *egress) addrs(slot uint16) (v4, v6 netip.Addr, veth string) {
	b4 := e.v4Prefix.Addr().As4()
	binary.BigEndian.PutUint16(b4[2:], slot)
	b6 := v6Prefix.Addr().As16()
	binary.BigEndian.PutUint16(b6[14:], slot)
	return netip.AddrFrom4(b4), netip.AddrFrom16(b6), fmt.Sprintf("ve%x", slot)
}

// gateway4 is the egress side's IPv4 address on every link: .0.1.
func (e *egress) gateway4() netip.Addr {
	b := e.v4Prefix.Addr().As4()
	b[3] = 1
	return netip.AddrFrom4(b)
}

// stop ends pasta and removes the namespace.
func (e *egress) stop() error {
	var err error
	e.close.Do(func() {
		if e.pasta != nil {
			e.pasta.stop()
		}
		e.fdMu.Lock()
		if e.fd >= 0 {
			unix.Close(e.fd)
			e.fd = -1
		}
		e.fdMu.Unlock()
		if err = removeNetns(e.path); err == nil {
			err = os.RemoveAll(e.dir)
		}
	})
	return err
}

// run runs a command (ip, nft) with stdin; the calling thread's network
// namespace is the command's.
func run(name, stdin string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// freeV4Prefix is the first of v4Candidates that no IPv4 route of this
// (gcpsim's) namespace overlaps: pasta copies those routes into the egress
// namespace.
func freeV4Prefix() (netip.Prefix, error) {
	routes, err := hostRoutes4()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, c := range v4Candidates {
		if !overlapsAny(c, routes) {
			return c, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("egress: the host routes %v, which all overlap", v4Candidates)
}

func overlapsAny(p netip.Prefix, routes []netip.Prefix) bool {
	for _, r := range routes {
		if r.Bits() > 0 && r.Overlaps(p) {
			return true
		}
	}
	return false
}

// hostRoutes4 reads /proc/net/route: destinations and masks are
// little-endian hex.
func hostRoutes4() ([]netip.Prefix, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("host routes: %w", err)
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		var dst, mask uint32
		if _, err := fmt.Sscanf(fl[1]+" "+fl[7], "%x %x", &dst, &mask); err != nil {
			continue
		}
		var d [4]byte
		binary.LittleEndian.PutUint32(d[:], dst)
		var m [4]byte
		binary.LittleEndian.PutUint32(m[:], mask)
		bits := 0
		for _, b := range m {
			for ; b&0x80 != 0; b <<= 1 {
				bits++
			}
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(d), bits).Masked())
	}
	return out, sc.Err()
}
