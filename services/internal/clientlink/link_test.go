package clientlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/agent/proto"

	"github.com/sockerless/sockerless/services/internal/portbind"
	"github.com/sockerless/sockerless/services/internal/testnet"
)

// swappable serves whichever Server is current, as one control plane
// address served by successive processes.
type swappable struct {
	mu  sync.Mutex
	cur http.Handler
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.cur
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

type env struct {
	sw       *swappable
	srv      *Server
	client   *Client
	bindings []portbind.Request // what a new Server's sync sends
	mu       sync.Mutex
	echo     string
	granted  string // the one host path binds may sync
}

func (e *env) allowBind(path string, readOnly, create bool) error {
	if e.granted == "" || path != e.granted {
		return fmt.Errorf("host path %s: not granted", path)
	}
	return nil
}

// newServer makes a Server whose published-port connections reach echo.
func (e *env) newServer() *Server {
	return NewServer(ServerConfig{
		Dial: func(ctx context.Context, ns, client, container string, port int) (net.Conn, error) {
			if container != "c1" || port != 80 {
				return nil, syscall.ECONNREFUSED
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", e.echo)
		},
		Bindings: func(context.Context, string, string) ([]portbind.Request, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.bindings, nil
		},
	})
}

func newEnv(t *testing.T, hostPorts ...int) *env {
	e := &env{sw: &swappable{}, echo: testnet.Echo(t)}
	e.srv = e.newServer()
	e.sw.cur = e.srv
	hs := httptest.NewServer(e.sw)
	t.Cleanup(hs.Close)
	u, _ := url.Parse(hs.URL)
	e.client = NewClient(ClientConfig{Upstream: u, ClientID: "fwd-test", HostPorts: hostPorts, AllowBind: e.allowBind,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.client.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		e.srv.Close()
	})
	return e
}

func bindReq(run uint32) portbind.Request {
	return portbind.Request{Container: "c1", Run: run, Ports: network.PortMap{
		network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}}
}

func (e *env) bind(t *testing.T, run uint32) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ports, err := e.srv.Bind(ctx, "default", "fwd-test", bindReq(run))
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + ports[network.MustParsePort("80/tcp")][0].HostPort
}

// roundTrip sends msg on c and reads it back.
func roundTrip(c net.Conn, msg string) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	b := make([]byte, len(msg))
	_, err := io.ReadFull(c, b)
	return string(b), err
}

func TestBoundPortCarriesConnections(t *testing.T) {
	e := newEnv(t)
	addr := e.bind(t, 1)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "through the link"); err != nil || got != "through the link" {
		t.Fatalf("round trip %q, %v", got, err)
	}
	t.Run("release of the run closes the port", func(t *testing.T) {
		ctx := context.Background()
		if err := e.srv.Release(ctx, "default", "fwd-test", "c1", 1); err != nil {
			t.Fatal(err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatal("the port still accepts after its release")
		}
	})
}

func TestBindOfATakenPortIsABindError(t *testing.T) {
	e := newEnv(t)
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	req := portbind.Request{Container: "c1", Run: 1, Ports: network.PortMap{network.MustParsePort("80/tcp"): {{
		HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: taken.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):]}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = e.srv.Bind(ctx, "default", "fwd-test", req)
	var be *portbind.BindError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v (%T), want a *portbind.BindError", err, err)
	}
}

// TestControlPlaneRestartKeepsTheListener: the forwarder's listener stays
// open while its control plane goes; the connection open then ends, and a
// new one works once a new control plane (whose sync names the binding)
// is there.
func TestControlPlaneRestartKeepsTheListener(t *testing.T) {
	e := newEnv(t)
	addr := e.bind(t, 1)
	run, ports := e.client.Binder().Bound("c1")
	e.mu.Lock()
	e.bindings = []portbind.Request{{Container: "c1", Run: run, Ports: ports}}
	e.mu.Unlock()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := roundTrip(c, "before"); err != nil {
		t.Fatal(err)
	}

	old := e.srv
	e.srv = e.newServer()
	e.sw.mu.Lock()
	e.sw.cur = e.srv
	e.sw.mu.Unlock()
	old.Close()

	if _, err := roundTrip(c, "across"); err == nil {
		t.Fatal("a connection open across the restart still carries bytes")
	}
	n, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the listener closed with its control plane: %v", err)
	}
	defer n.Close()
	if got, err := roundTrip(n, "after"); err != nil || got != "after" {
		t.Fatalf("new connection after the restart: %q, %v", got, err)
	}
}

func TestSyncReleasesWhatIsNoLongerWanted(t *testing.T) {
	e := newEnv(t)
	addr := e.bind(t, 1)
	old := e.srv
	e.srv = e.newServer() // its sync names nothing
	e.sw.mu.Lock()
	e.sw.cur = e.srv
	e.sw.mu.Unlock()
	old.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("a binding the new control plane does not name is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDialHostReachesOnlyExposedPorts(t *testing.T) {
	allowed := testnet.Port(testnet.Greeter(t, "host says hi"))
	e := newEnv(t, allowed)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.srv.DialHost(ctx, "default", "fwd-test", allowed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "host says hi" {
		t.Fatalf("read %q", b)
	}
	if _, err := e.srv.DialHost(ctx, "default", "fwd-test", allowed+1); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a port not exposed: %v, want refused", err)
	}
	if got := e.srv.HostPorts("default", "fwd-test"); len(got) != 1 || got[0] != allowed {
		t.Fatalf("host ports the link said: %v, want [%d]", got, allowed)
	}
}

func TestBindForAClientThatIsNotConnectedFails(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := e.srv.Bind(ctx, "default", "fwd-other", bindReq(1)); err == nil {
		t.Fatal("bind for a client without a link succeeded")
	}
}

func TestClientIDIsStable(t *testing.T) {
	a, b := ClientID("host", "unix:///tmp/s.sock"), ClientID("host", "unix:///tmp/s.sock")
	if a != b || a == ClientID("host", "unix:///tmp/t.sock") {
		t.Fatalf("ids %s %s", a, b)
	}
}

// The control plane syncs only the binds the client side allows: a path
// it did not grant is refused before any of its files is read.
func TestBindSyncOnlyOfGrantedPaths(t *testing.T) {
	e := newEnv(t)
	granted := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.granted = granted
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.srv.DialBind(ctx, "default", "fwd-test", proto.MeshOpen{Kind: proto.MeshBind, Container: "c1", Source: granted})
	if err != nil {
		t.Fatalf("a granted bind: %v", err)
	}
	c.Close()
	if c, err := e.srv.DialBind(ctx, "default", "fwd-test", proto.MeshOpen{Kind: proto.MeshBind, Container: "c1", Source: filepath.Dir(secret), ReadOnly: true}); err == nil {
		c.Close()
		t.Fatal("a bind of a path never granted was served")
	}
}
