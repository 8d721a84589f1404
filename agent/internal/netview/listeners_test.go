package netview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// peerAddr returns a free address on a random 127.x loopback address, as a
// peer's would be.
func peerAddr(t *testing.T) string {
	t.Helper()
	ip := fmt.Sprintf("127.%d.%d.%d", 200+rand.IntN(50), rand.IntN(256), 2+rand.IntN(250))
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// echoServer stands for a peer's server: it echoes until EOF, then closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// fakeMesh records the streams opened and connects them to target (or
// refuses them when target is "").
type fakeMesh struct {
	mu     sync.Mutex
	opened []proto.MeshOpen
	target string
}

func (m *fakeMesh) dial(ctx context.Context, open proto.MeshOpen) (net.Conn, error) {
	m.mu.Lock()
	m.opened = append(m.opened, open)
	target := m.target
	m.mu.Unlock()
	if target == "" {
		return nil, errors.New("refused")
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

func TestPeerListenersTunnel(t *testing.T) {
	mesh := &fakeMesh{target: echoServer(t)}
	v := New(Config{Root: t.TempDir(), DNSAddr: freeUDP(t), Dial: mesh.dial})
	defer v.Close()
	peer, host := peerAddr(t), peerAddr(t)
	_, hostPort, _ := net.SplitHostPort(host)
	var port int
	fmt.Sscan(hostPort, &port)
	view := proto.NetworkView{Listen: []proto.ListenAddr{
		{Addr: peer, Container: "peer1"},
		{Addr: host, Host: true, Port: port},
	}}
	if err := v.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{peer, host} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite() // half-close reaches the server, whose answer still arrives
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "hello" {
			t.Fatalf("through %s: %q, %v", addr, got, err)
		}
	}
	mesh.mu.Lock()
	opened := slices.Clone(mesh.opened)
	mesh.mu.Unlock()
	want := []proto.MeshOpen{{Kind: proto.MeshPeer, Container: "peer1", Addr: peer}, {Kind: proto.MeshHost, Port: port}}
	if !slices.Equal(opened, want) {
		t.Fatalf("mesh streams %+v, want %+v", opened, want)
	}

	// A refused stream resets the client's connection, as a refused connect.
	mesh.mu.Lock()
	mesh.target = ""
	mesh.mu.Unlock()
	// (On loopback the reset may even reach the client's connect.)
	if c, err := net.Dial("tcp", peer); err == nil {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after a refused stream: %v, want a reset", err)
		}
		c.Close()
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial with a refused stream: %v, want a reset", err)
	}

	// A peer that leaves the view is no longer listened for.
	if err := v.Apply(t.Context(), proto.NetworkView{Listen: view.Listen[1:]}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", peer, 5*time.Second); err == nil {
		t.Fatalf("%s still accepts after its peer left", peer)
	}
	if got := v.peers.addrs(); !slices.Equal(got, []string{host}) {
		t.Fatalf("listening on %v, want [%s]", got, host)
	}
}

func TestListeningPortsScan(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "net"), 0o755)
	os.MkdirAll(filepath.Join(proc, "self", "fd"), 0o755)
	os.Symlink("socket:[999]", filepath.Join(proc, "self", "fd", "3")) // the agent's own listener
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tcp := header +
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0 100 0 0 10 0\n" + // 0.0.0.0:8080
		"   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 102 1 0 100 0 0 10 0\n" + // 127.0.0.1:631 (loopback only)
		"   2: 020012 7F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1 0 100 0 0 10 0\n" + // malformed
		"   3: 0200127F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 104 1 0 100 0 0 10 0\n" + // 127.18.0.2:5432 (own address)
		"   4: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0 100 0 0 10 0\n" + // the agent's :80
		"   5: 00000000:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 105 1 0 100 0 0 10 0\n" // established, not listening
	tcp6 := header +
		"   0: 00000000000000000000000000000000:1B58 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 106 1 0 100 0 0 10 0\n" // [::]:7000
	os.WriteFile(filepath.Join(proc, "net", "tcp"), []byte(tcp), 0o644)
	os.WriteFile(filepath.Join(proc, "net", "tcp6"), []byte(tcp6), 0o644)
	got, err := listeningPorts(proc, map[string]bool{"127.18.0.2": true})
	if err != nil || !slices.Equal(got, []int{5432, 7000, 8080}) {
		t.Fatalf("listening ports = %v, %v; want [5432 7000 8080]", got, err)
	}

	// Changes reach the callback, once each.
	reports := make(chan []int, 10)
	v := New(Config{Root: t.TempDir(), Proc: proc, DNSAddr: freeUDP(t), ScanInterval: 10 * time.Millisecond, Listening: func(p []int) { reports <- p }})
	defer v.Close()
	if err := v.Apply(t.Context(), proto.NetworkView{Hosts: []proto.HostEntry{{IP: "127.18.0.2", Names: []string{"me"}}}}); err != nil {
		t.Fatal(err)
	}
	waitReport := func(want []int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case p := <-reports:
				if slices.Equal(p, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no report of %v", want)
			}
		}
	}
	waitReport([]int{5432, 7000, 8080})
	os.WriteFile(filepath.Join(proc, "net", "tcp6"), []byte(header), 0o644)
	waitReport([]int{5432, 8080})
}

func TestDiscoveredPortsWaitAndYield(t *testing.T) {
	mesh := &fakeMesh{target: echoServer(t)}
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "net"), 0o755)
	os.MkdirAll(filepath.Join(proc, "self", "fd"), 0o755)
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	// The container's own process listens on 0.0.0.0:8080.
	os.WriteFile(filepath.Join(proc, "net", "tcp"), []byte(header+
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0 100 0 0 10 0\n"), 0o644)
	v := New(Config{Root: t.TempDir(), Proc: proc, DNSAddr: freeUDP(t), Dial: mesh.dial, Listening: func([]int) {},
		ScanInterval: 10 * time.Millisecond, DiscoveredDelay: 300 * time.Millisecond})
	defer v.Close()
	later, mine := peerAddr(t), "127.201.0.2:8080"
	view := proto.NetworkView{Listen: []proto.ListenAddr{
		{Addr: later, Container: "p1", Discovered: true},
		{Addr: mine, Container: "p2", Discovered: true},
	}}
	if err := v.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	if got := v.peers.addrs(); len(got) != 0 {
		t.Fatalf("discovered ports bound at once: %v", got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Equal(v.peers.addrs(), []string{later}) {
		if time.Now().After(deadline) {
			t.Fatalf("listening on %v, want only %s (8080 is the container's own)", v.peers.addrs(), later)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
