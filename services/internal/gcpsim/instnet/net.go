package instnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Config says how instances reach the host.
type Config struct {
	// HostPorts are TCP ports of the host's loopback that instances reach
	// at the same address (127.0.0.1 and [::1]): the control plane's
	// callback port, say.
	HostPorts []int
	// Pasta is the pasta binary that gives instances internet egress;
	// empty for none. The egress namespace is set up with ip(8) and
	// nft(8) (iproute2, nftables), which must be on PATH too.
	Pasta string
	// ResolvConf is the host's resolver configuration, copied into each
	// instance; default /etc/resolv.conf.
	ResolvConf string
}

// Net is the network of one instance: its namespace, the relays to the
// host's loopback and its link to the egress namespace (internet egress).
// Its directory holds the namespace's file.
type Net struct {
	dir, path string
	resolv    []byte
	relays    *relays
	egress    *egress       // nil without internet egress
	ownEgress bool          // egress is this Net's own (Open), not a pool's
	linked    chan struct{} // closed once linked to egress, or failed
	slot      uint16        // the link's slot in egress; 0 if none
	noEgress  error         // why there is no internet egress, if there is none

	mu     sync.RWMutex // guards fd against Close while entering it
	fd     int          // the namespace, open for setns; -1 once closed
	closed bool
}

// nsFile is the namespace's bind mount in an instance network's directory.
const nsFile = "netns"

// Open creates the network of an instance in dir (which it owns): a new
// namespace with loopback up, bound at dir/netns; with cfg.Pasta, an
// egress namespace of its own (dir/egress) with pasta, which it is linked
// to for internet egress (AwaitEgress waits for it); relays of
// cfg.HostPorts and of the host's loopback resolvers. Close removes it
// all. A Pool's networks share one egress namespace instead.
func Open(dir string, cfg Config) (*Net, error) {
	var eg *egress
	if cfg.Pasta != "" {
		var err error
		if eg, err = startEgress(filepath.Join(dir, egressDir), cfg.Pasta); err != nil {
			return nil, err
		}
	}
	n, err := create(dir, eg, nil)
	if err != nil {
		if eg != nil {
			_ = eg.stop()
		}
		return nil, err
	}
	n.ownEgress = eg != nil
	if err := n.attach(cfg.HostPorts, cfg.ResolvConf); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// egressDir is the egress namespace's directory, in a Pool's directory or
// in that of a Net of its own (Open).
const egressDir = "egress"

// create makes the namespace in dir and links it to eg in the background
// (if eg is set; else noEgress says why there is none).
func create(dir string, eg *egress, noEgress error) (*Net, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("instance network dir: %w", err)
	}
	n := &Net{dir: dir, path: filepath.Join(dir, nsFile), relays: newRelays(), fd: -1,
		egress: eg, linked: make(chan struct{}), noEgress: noEgress}
	if err := createNetns(n.path); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var err error
	n.fd, err = unix.Open(n.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = removeNetns(n.path)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	if eg == nil {
		if n.noEgress == nil {
			n.noEgress = ErrEgressOff
		}
		close(n.linked)
		return n, nil
	}
	go func() { // Close waits for it
		defer close(n.linked)
		n.slot, n.noEgress = eg.link(n.path, n.fd)
	}()
	return n, nil
}

// attach reads the host's resolver configuration (default
// /etc/resolv.conf) and starts the relays of hostPorts and of its
// loopback resolvers.
func (n *Net) attach(hostPorts []int, resolvConf string) error {
	if resolvConf == "" {
		resolvConf = "/etc/resolv.conf"
	}
	resolv, err := os.ReadFile(resolvConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("host resolver configuration: %w", err)
	}
	n.resolv = resolv
	return n.relayAll(hostPorts)
}

// relayAll listens inside the namespace on each host port (127.0.0.1 and
// ::1) and on port 53 of each loopback resolver (TCP and UDP).
func (n *Net) relayAll(ports []int) error {
	for _, p := range slices.Compact(slices.Sorted(slices.Values(ports))) {
		for _, ip := range []string{"127.0.0.1", "::1"} {
			addr := net.JoinHostPort(ip, strconv.Itoa(p))
			ln, err := listenIn(n.fd, "tcp", addr)
			if err != nil {
				if ip == "::1" && errors.Is(err, unix.EADDRNOTAVAIL) {
					continue // no IPv6 in the namespace
				}
				return fmt.Errorf("relay host port %s: %w", addr, err)
			}
			n.relays.serveTCP(ln, addr)
		}
	}
	for _, a := range loopbackResolvers(n.resolv) {
		addr := netip.AddrPortFrom(a, 53).String()
		// TCP port 53 of 127.0.0.1 and ::1 may be a host port already.
		if !slices.Contains(ports, 53) || (a != netip.MustParseAddr("127.0.0.1") && a != netip.IPv6Loopback()) {
			ln, err := listenIn(n.fd, "tcp", addr)
			if err != nil {
				return fmt.Errorf("relay resolver %s: %w", addr, err)
			}
			n.relays.serveTCP(ln, addr)
		}
		pc, err := listenPacketIn(n.fd, "udp", addr)
		if err != nil {
			return fmt.Errorf("relay resolver %s: %w", addr, err)
		}
		n.relays.serveUDP(pc, addr)
	}
	return nil
}

// Path is the namespace's file, for runc's config and nsenter --net.
func (n *Net) Path() string { return n.path }

// ResolvConf is the instance's /etc/resolv.conf: the host's, whose
// loopback resolvers the instance reaches through the relays.
func (n *Net) ResolvConf() []byte { return n.resolv }

// Hosts is the instance's /etc/hosts: docker's localhost lines.
func (n *Net) Hosts() []byte { return []byte(defaultHosts) }

// AwaitEgress waits until the instance has internet egress (it is linked
// to the egress namespace, whose pasta is ready) and returns nil, or
// returns why it has none.
func (n *Net) AwaitEgress(ctx context.Context) error {
	select {
	case <-n.linked:
		return n.noEgress
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DialContext connects to addr from inside the namespace.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
	}
	return dialIn(ctx, n.fd, network, addr)
}

// Close stops the relays, removes the link to the egress namespace (and
// that, if it is the Net's own) and removes the namespace (it ends once
// the last socket or process in it is gone).
func (n *Net) Close() error {
	<-n.linked
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
	n.mu.Unlock()
	n.relays.Close()
	if n.slot != 0 {
		n.egress.unlink(n.slot)
	}
	if n.ownEgress {
		if err := n.egress.stop(); err != nil {
			return err
		}
	}
	if err := removeNetns(n.path); err != nil {
		return err
	}
	return os.RemoveAll(n.dir)
}

// removeLeftovers removes what the network in dir (an instance's or an
// egress namespace's) left behind when its gcpsim ended without cleaning
// up: a pasta process, the namespace's bind mount, an egress namespace of
// its own and the directory.
func removeLeftovers(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, egressDir)); err == nil {
		if err := removeLeftovers(filepath.Join(dir, egressDir)); err != nil {
			return err
		}
	}
	path := filepath.Join(dir, nsFile)
	killLeftoverPasta(dir, path)
	if err := removeNetns(path); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
