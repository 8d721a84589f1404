package portbind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/testnet"
)

// newBinder returns a Binder whose Dial reaches addr for container "c1"
// and refuses everything else.
func newBinder(t *testing.T, addr string) *Binder {
	b := New(Config{Dial: func(ctx context.Context, id string, port int) (net.Conn, error) {
		if id != "c1" || port != 80 {
			return nil, fmt.Errorf("%w: %s:%d", proto.ErrRefused, id, port)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}})
	t.Cleanup(func() { b.Close() })
	return b
}

func req(run uint32, bs ...network.PortBinding) Request {
	return Request{Container: "c1", Run: run, Ports: network.PortMap{network.MustParsePort("80/tcp"): bs}}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// echo sends msg on a new connection to addr, half-closes, and returns
// what comes back.
func echo(t *testing.T, addr, msg string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.Write([]byte(msg))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestBindPublishesOnEveryAddressLikeDocker(t *testing.T) {
	b := newBinder(t, testnet.Echo(t))
	port := strconv.Itoa(freePort(t))
	got, err := b.Bind(req(1, network.PortBinding{HostPort: port}))
	if err != nil {
		t.Fatal(err)
	}
	bs := got[network.MustParsePort("80/tcp")]
	if len(bs) != 2 || bs[0].HostIP != netip.IPv4Unspecified() || bs[1].HostIP != netip.IPv6Unspecified() || bs[0].HostPort != port || bs[1].HostPort != port {
		t.Fatalf("bindings %v, want 0.0.0.0 and :: on %s", bs, port)
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run("reached through "+host, func(t *testing.T) {
			if out, err := echo(t, net.JoinHostPort(host, port), "hello "+host); err != nil || out != "hello "+host {
				t.Fatalf("echo %q, %v", out, err)
			}
		})
	}
}

func TestBindChoosesHostPorts(t *testing.T) {
	tests := []struct {
		name  string
		want  func(t *testing.T) network.PortBinding
		check func(t *testing.T, bs []network.PortBinding)
	}{
		{"no host port gets one of the ephemeral range on one address",
			func(*testing.T) network.PortBinding {
				return network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1")}
			},
			func(t *testing.T, bs []network.PortBinding) {
				n, _ := strconv.Atoi(bs[0].HostPort)
				if len(bs) != 1 || bs[0].HostIP.String() != "127.0.0.1" || n < 1024 {
					t.Fatalf("bindings %v", bs)
				}
			}},
		{"a range skips its taken first port",
			func(t *testing.T) network.PortBinding {
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				p := ln.Addr().(*net.TCPAddr).Port
				return network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprintf("%d-%d", p, p+5)}
			},
			func(t *testing.T, bs []network.PortBinding) {
				if len(bs) != 1 {
					t.Fatalf("bindings %v", bs)
				}
				if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", bs[0].HostPort)); err != nil {
					t.Fatalf("chosen port %s not served: %v", bs[0].HostPort, err)
				} else {
					c.Close()
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBinder(t, testnet.Echo(t))
			got, err := b.Bind(req(1, tt.want(t)))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got[network.MustParsePort("80/tcp")])
		})
	}
}

func TestBindOfATakenPortFailsWithTheListenError(t *testing.T) {
	b := newBinder(t, testnet.Echo(t))
	taken, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	free := strconv.Itoa(freePort(t))
	_, err = b.Bind(Request{Container: "c1", Run: 1, Ports: network.PortMap{
		network.MustParsePort("80/tcp"): {{HostPort: free}},
		network.MustParsePort("81/tcp"): {{HostPort: port}},
	}})
	want := "listen tcp4 0.0.0.0:" + port + ": bind: address already in use"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+free); err == nil {
		c.Close()
		t.Fatalf("port %s of the failed bind is still served", free)
	}
}

func TestReleaseAndRuns(t *testing.T) {
	b := newBinder(t, testnet.Echo(t))
	port := strconv.Itoa(freePort(t))
	addr := "127.0.0.1:" + port
	if _, err := b.Bind(req(2, network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port})); err != nil {
		t.Fatal(err)
	}
	t.Run("binding the same run again returns its ports", func(t *testing.T) {
		got, err := b.Bind(req(2, network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}))
		if err != nil || got[network.MustParsePort("80/tcp")][0].HostPort != port {
			t.Fatalf("rebind %v, %v", got, err)
		}
	})
	t.Run("a release of an earlier run leaves the ports bound", func(t *testing.T) {
		b.Release("c1", 1)
		if out, err := echo(t, addr, "x"); err != nil || out != "x" {
			t.Fatalf("echo after a stale release: %q, %v", out, err)
		}
	})
	t.Run("a connection open across its run's release goes on", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("before"))
		buf := make([]byte, 6)
		io.ReadFull(c, buf)
		b.Release("c1", 2)
		if _, err := net.Dial("tcp", addr); err == nil {
			t.Fatal("port still accepts after its release")
		}
		c.Write([]byte("after!"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "after!" {
			t.Fatalf("open connection after release read %q, %v", buf, err)
		}
	})
}

func TestSyncKeepsWhatIsBoundAndReleasesTheRest(t *testing.T) {
	b := newBinder(t, testnet.Echo(t))
	port := strconv.Itoa(freePort(t))
	got, err := b.Bind(req(1, network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}))
	if err != nil {
		t.Fatal(err)
	}
	other := Request{Container: "c2", Run: 1, Ports: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}}
	if _, err := b.Bind(other); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if errs := b.Sync([]Request{{Container: "c1", Run: 1, Ports: got}}); len(errs) != 0 {
		t.Fatal(errs)
	}
	if run, _ := b.Bound("c2"); run != 0 {
		t.Fatal("c2 still bound after a sync without it")
	}
	c.Write([]byte("kept"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "kept" {
		t.Fatalf("connection across the sync read %q, %v", buf, err)
	}
}

// TestConnectionToAPortNobodyListensOnIsClosed: as by Docker's userland
// proxy, the connection is accepted and closed; the client's unread
// request makes it a reset.
func TestConnectionToAPortNobodyListensOnIsClosed(t *testing.T) {
	b := New(Config{Dial: func(context.Context, string, int) (net.Conn, error) {
		return nil, fmt.Errorf("dial: %w", proto.ErrRefused)
	}})
	defer b.Close()
	got, err := b.Bind(req(1, network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1")}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+got[network.MustParsePort("80/tcp")][0].HostPort)
	if errors.Is(err, syscall.ECONNRESET) {
		return // reset before the connect returned
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !(err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("read = %d, %v; want the end of the connection (EOF or a reset)", n, err)
	}
}

func TestManyParallelConnections(t *testing.T) {
	b := newBinder(t, testnet.Echo(t))
	got, err := b.Bind(req(1, network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1")}))
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + got[network.MustParsePort("80/tcp")][0].HostPort
	testnet.Parallel(t, 100, func(i int) error {
		msg := strings.Repeat(fmt.Sprintf("%03d", i), 30_000)
		if out, err := echo(t, addr, msg); err != nil || out != msg {
			return fmt.Errorf("%d bytes back, %v", len(out), err)
		}
		return nil
	})
}

func TestHostPortsAllowOnlyWhatTheUserExposed(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	allowed := ln.Addr().(*net.TCPAddr).Port
	h := NewHostPorts([]int{allowed})
	ctx := context.Background()
	c, err := h.Dial(ctx, allowed)
	if err != nil {
		t.Fatalf("allowed port: %v", err)
	}
	c.Close()
	if _, err := h.Dial(ctx, allowed+1); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a port not exposed: %v, want refused", err)
	}
	if _, err := ParsePorts([]string{"5000", "x"}); err == nil {
		t.Fatal("ParsePorts accepted x")
	}
}

// TestCloseEndsIdleConnections: a connection whose container end never
// sends (its reads block) does not hold Close up.
func TestCloseEndsIdleConnections(t *testing.T) {
	b := New(Config{Dial: func(context.Context, string, int) (net.Conn, error) {
		far, near := net.Pipe()
		t.Cleanup(func() { far.Close() })
		return near, nil
	}})
	got, err := b.Bind(req(1, network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1")}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+got[network.MustParsePort("80/tcp")][0].HostPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitTracked := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.conns)
		b.mu.Unlock()
		if n == 2 || time.Now().After(waitTracked) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for an idle connection")
	}
}
