package instnet

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// A pool's networks share one egress namespace and its one pasta; each
// has an address of its own and a default route, and none reaches
// another's address.
func TestPoolSharesOneEgress(t *testing.T) {
	needRoot(t)
	bin := pastaOrSkip(t)
	p, err := NewPool(t.TempDir(), Config{Pasta: bin, ResolvConf: "/nonexistent"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var nets []*Net
	for range 3 {
		n, err := p.Open(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if err := n.AwaitEgress(t.Context()); err != nil {
			t.Skipf("no egress on this host: %v", err)
		}
		nets = append(nets, n)
	}
	addrs := map[netip.Addr]bool{}
	for _, n := range nets {
		if n.egress != nets[0].egress {
			t.Fatal("networks of one pool with egress namespaces of their own")
		}
		if !hasDefaultRoute(t, n) {
			t.Errorf("%s: no default route", n.Path())
		}
		a := eth0Addr(t, n)
		if addrs[a] {
			t.Errorf("address %s given twice", a)
		}
		addrs[a] = true
	}
	if got := pastasOf(t, nets[0].egress.path); got != 1 {
		t.Errorf("%d pasta processes serve the egress namespace, want 1", got)
	}

	// Another instance's address is not reachable, as when each had a
	// pasta of its own.
	ln, err := listenIn(nets[1].fd, "tcp", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if c, err := nets[0].DialContext(ctx, "tcp", net.JoinHostPort(eth0Addr(t, nets[1]).String(), "8080")); err == nil {
		c.Close()
		t.Error("one instance connected to another's address")
	}
}

// eth0Addr is the IPv4 address of eth0 inside n.
func eth0Addr(t *testing.T, n *Net) netip.Addr {
	t.Helper()
	var a netip.Addr
	err := inNetns(n.fd, func() error {
		ifc, err := net.InterfaceByName(linkName)
		if err != nil {
			return err
		}
		as, err := ifc.Addrs()
		if err != nil {
			return err
		}
		for _, x := range as {
			if p, err := netip.ParsePrefix(x.String()); err == nil && p.Addr().Is4() {
				a = p.Addr()
			}
		}
		return nil
	})
	if err != nil || !a.IsValid() {
		t.Fatalf("eth0 address in %s: %v", n.Path(), err)
	}
	return a
}

// pastasOf counts the pasta processes serving the namespace at nsPath.
func pastasOf(t *testing.T, nsPath string) int {
	t.Helper()
	procs, _ := os.ReadDir("/proc")
	count := 0
	for _, p := range procs {
		b, err := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), "\x00") && servesNetns(b, nsPath) {
			count++
		}
	}
	return count
}
