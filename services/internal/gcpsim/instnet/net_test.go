package instnet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoopbackResolvers(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want []string
	}{
		{"a stub of systemd-resolved is relayed", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n", []string{"127.0.0.53"}},
		{"remote resolvers are reached through egress", "nameserver 10.0.0.1\nnameserver 2001:db8::1\n", nil},
		{"loopback ones of both families, once each", "nameserver 127.0.0.1\nnameserver ::1\nnameserver 10.0.0.1\nnameserver 127.0.0.1\n", []string{"127.0.0.1", "::1"}},
		{"comments and junk are ignored", "# nameserver 127.0.0.9\nnameserver\nnameserver bogus\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range loopbackResolvers([]byte(tc.conf)) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("loopbackResolvers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestServesNetns(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		want    bool
	}{
		{"pasta of the namespace", "pasta\x00--foreground\x00--netns\x00/s/net/netns\x00--config-net\x00", true},
		{"pasta re-executed as passt.avx2", "/usr/bin/passt.avx2\x00--netns\x00/s/net/netns\x00", true},
		{"pasta of another namespace", "pasta\x00--netns\x00/other/netns\x00", false},
		{"another program naming the path", "sleep\x00--netns\x00/s/net/netns\x00", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := servesNetns([]byte(tc.cmdline), "/s/net/netns"); got != tc.want {
				t.Errorf("servesNetns = %v, want %v", got, tc.want)
			}
		})
	}
}

// needRoot skips tests that create network namespaces where they cannot.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

// echoServer listens on 127.0.0.1 of the host and answers each
// connection's first line with "host:" + the line.
func echoServer(t *testing.T) int {
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
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "host:"+line)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func openNet(t *testing.T, cfg Config) *Net {
	t.Helper()
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = filepath.Join(t.TempDir(), "resolv.conf")
		os.WriteFile(cfg.ResolvConf, []byte("nameserver 192.0.2.53\n"), 0o644)
	}
	n, err := Open(filepath.Join(t.TempDir(), "net"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestNetworkNamespace(t *testing.T) {
	needRoot(t)
	hostPort := echoServer(t)
	otherPort := echoServer(t)
	a := openNet(t, Config{HostPorts: []int{hostPort}})
	b := openNet(t, Config{HostPorts: []int{hostPort}})
	ctx := t.Context()

	t.Run("a host port given reaches the host at the same address", func(t *testing.T) {
		for _, n := range []*Net{a, b} {
			if got := roundTrip(t, n, "127.0.0.1:"+strconv.Itoa(hostPort)); got != "host:ping\n" {
				t.Errorf("answer %q, want the host's", got)
			}
		}
	})

	t.Run("other ports of the host's loopback are not reachable", func(t *testing.T) {
		c, err := a.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(otherPort))
		if err == nil {
			c.Close()
			t.Fatal("connected to a host port that was not given")
		}
	})

	t.Run("two namespaces both listen on the same port", func(t *testing.T) {
		for _, n := range []*Net{a, b} {
			ln, err := listenIn(n.fd, "tcp", "127.0.0.1:5432")
			if err != nil {
				t.Fatalf("listen on :5432: %v", err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				c, err := ln.Accept()
				if err == nil {
					io.WriteString(c, n.Path()+"\n")
					c.Close()
				}
			}()
		}
		for _, n := range []*Net{a, b} {
			c, err := n.DialContext(ctx, "tcp", "127.0.0.1:5432")
			if err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line != n.Path()+"\n" {
				t.Errorf("namespace %s reached %q", n.Path(), line)
			}
		}
	})

	t.Run("the agent's addresses on loopback are bindable", func(t *testing.T) {
		for _, addr := range []string{"127.0.0.11:53", "127.18.0.3:5432"} {
			ln, err := listenIn(a.fd, "tcp", addr)
			if err != nil {
				t.Fatalf("listen on %s: %v", addr, err)
			}
			ln.Close()
		}
	})

	t.Run("close removes the namespace and its pasta", func(t *testing.T) {
		n := openNet(t, Config{HostPorts: []int{hostPort}, Pasta: pastaOrSkip(t)})
		if err := n.AwaitEgress(ctx); err != nil {
			t.Fatalf("egress: %v", err)
		}
		pid := pastaPID(t, n)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if mounted(t, n.Path()) {
			t.Error("namespace still bound after Close")
		}
		if _, err := os.Stat(n.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace file after Close: %v", err)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("pasta %d still runs after Close", pid)
		}
	})
}

// roundTrip sends "ping\n" to addr from inside n and returns the answer.
func roundTrip(t *testing.T, n *Net, addr string) string {
	t.Helper()
	c, err := n.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from the namespace: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return line
}

func TestPastaGivesARoute(t *testing.T) {
	needRoot(t)
	bin := pastaOrSkip(t)
	n := openNet(t, Config{Pasta: bin})
	if err := n.AwaitEgress(t.Context()); err != nil {
		t.Skipf("pasta cannot set up a namespace on this host (no default route?): %v", err)
	}
	if !hasDefaultRoute(t, n) {
		t.Error("no default route inside the namespace after pasta set it up")
	}
	off := openNet(t, Config{})
	if err := off.AwaitEgress(t.Context()); !errors.Is(err, ErrEgressOff) {
		t.Errorf("egress without pasta = %v, want ErrEgressOff", err)
	}
	if hasDefaultRoute(t, off) {
		t.Error("a namespace without pasta has a default route")
	}
}

// hasDefaultRoute reads the routing table inside n.
func hasDefaultRoute(t *testing.T, n *Net) bool {
	t.Helper()
	var routes []byte
	err := inNetns(n.fd, func() error {
		var err error
		routes, err = os.ReadFile("/proc/thread-self/net/route")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(routes), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "00000000" && f[7] == "00000000" {
			return true
		}
	}
	return false
}

func TestLoopbackResolverIsRelayed(t *testing.T) {
	needRoot(t)
	resolver := netip.MustParseAddr("127.0.0.77")
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(resolver, 53).String())
	if err != nil {
		t.Skipf("cannot serve DNS on %s:53 on this host: %v", resolver, err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("answer:"), buf[:n]...), from)
		}
	}()
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(conf, []byte("nameserver "+resolver.String()+"\n"), 0o644)
	n := openNet(t, Config{ResolvConf: conf})
	if string(n.ResolvConf()) != "nameserver 127.0.0.77\n" {
		t.Errorf("instance resolv.conf = %q, want the host's", n.ResolvConf())
	}
	c, err := n.DialContext(t.Context(), "udp", "127.0.0.77:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte("query"))
	buf := make([]byte, 512)
	m, err := c.Read(buf)
	if err != nil || string(buf[:m]) != "answer:query" {
		t.Fatalf("relayed DNS answer %q, %v; want the host resolver's", buf[:m], err)
	}
}

func TestPoolRemovesLeftovers(t *testing.T) {
	needRoot(t)
	bin := pastaOrSkip(t)
	dir := t.TempDir()
	n, err := Open(filepath.Join(dir, "net-left"), Config{Pasta: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.AwaitEgress(context.Background()); err != nil {
		t.Skipf("pasta cannot set up a namespace here: %v", err)
	}
	pid := pastaPID(t, n)
	// As a gcpsim that crashed left it: the next one's pool cleans up.
	p, err := NewPool(dir, Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if mounted(t, n.Path()) {
		t.Error("leftover namespace still bound")
	}
	if _, err := os.Stat(filepath.Join(dir, "net-left")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover network dir: %v, want it gone", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("leftover pasta %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoolMakesOneAhead(t *testing.T) {
	needRoot(t)
	bin := pastaOrSkip(t)
	hostPort := echoServer(t)
	dir := t.TempDir()
	p, err := NewPool(dir, Config{Pasta: bin, ResolvConf: "/nonexistent"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	nets := func() int {
		entries, _ := os.ReadDir(dir)
		return len(slices.DeleteFunc(entries, func(e os.DirEntry) bool { return !strings.HasPrefix(e.Name(), "net-") }))
	}
	if got := nets(); got != 0 {
		t.Errorf("%d networks before the first Open, want none", got)
	}
	var opened []*Net
	for range 3 {
		n, err := p.Open([]int{hostPort})
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, n)
		p.Refill()
		if got := roundTrip(t, n, "127.0.0.1:"+strconv.Itoa(hostPort)); got != "host:ping\n" {
			t.Errorf("answer %q, want the host's", got)
		}
		if err := n.AwaitEgress(t.Context()); err != nil {
			t.Logf("no egress on this host: %v", err)
		}
	}
	waitUntil(t, "three networks in use and one ahead", func() bool { return nets() == 4 })
	for _, n := range opened {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d dirs left after closing all networks and the pool", len(entries))
	}
	if _, err := p.Open(nil); err == nil {
		t.Error("a closed pool opened a network")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pastaOrSkip(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("pasta")
	if err != nil {
		t.Skip("needs pasta (apt-get install passt)")
	}
	return bin
}

func pastaPID(t *testing.T, n *Net) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.egress.dir, "pasta.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pasta pid %q: %v", b, err)
	}
	return pid
}

// mounted reports whether path is a mount point of this process.
func mounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}
