package netview

import (
	"net"
	"slices"
	"testing"
)

// The kernel's answer names this process's listeners, IPv4 and IPv6, by
// address, port and the inode of /proc/self/fd, and no connected socket.
func TestDiagListeners(t *testing.T) {
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	c, err := net.Dial("tcp4", ln4.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln6, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		t.Skip("no IPv6:", err)
	}
	defer ln6.Close()
	socks, err := diagListeners()
	if err != nil {
		t.Fatal(err)
	}
	own := ownSockets("/proc")
	find := func(ln net.Listener) *listenSock {
		a := ln.Addr().(*net.TCPAddr)
		i := slices.IndexFunc(socks, func(s listenSock) bool { return s.port == a.Port && s.ip.Equal(a.IP) })
		if i < 0 {
			t.Fatalf("%s not in %v", a, socks)
		}
		return &socks[i]
	}
	for _, ln := range []net.Listener{ln4, ln6} {
		if s := find(ln); !own[s.inode] {
			t.Errorf("%s: inode %s is not one of this process's sockets", ln.Addr(), s.inode)
		}
	}
	local := c.LocalAddr().(*net.TCPAddr)
	if slices.ContainsFunc(socks, func(s listenSock) bool { return s.port == local.Port }) {
		t.Errorf("connected socket %s listed as listening", local)
	}
}
