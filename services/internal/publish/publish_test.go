package publish_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
	"github.com/sockerless/sockerless/services/internal/agenthub"
	"github.com/sockerless/sockerless/services/internal/clientlink"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/publish"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
	"github.com/sockerless/sockerless/services/internal/testnet"
)

// backend authorizes the agent "default/c1" with secret "s" for the hub.
type backend struct{}

func (backend) AuthorizeAgent(_ context.Context, id, secret string) error {
	if id != "default/c1" || secret != "s" {
		return engine.Errorf(engine.KindUnauthorized, "no")
	}
	return nil
}
func (backend) AgentAcked(context.Context, string) (map[uint32]uint64, error) { return nil, nil }
func (backend) StoreOutput(context.Context, string, []engine.LogEntry, map[uint32]uint64) error {
	return nil
}
func (backend) StoreExit(context.Context, string, proto.Exit) error         { return nil }
func (backend) StoreExecExit(context.Context, string, proto.ExecExit) error { return nil }
func (backend) AgentListening(context.Context, string, []int)               {}
func (backend) AgentGone(string)                                            {}

// world is a control plane's network parts on real listeners: the store,
// the hub (with the mesh), the client links and the plane; a forwarder's
// link; and an agent's mesh whose MeshDial streams reach this machine.
type world struct {
	st     engine.Store
	plane  *publish.Plane
	hub    *agenthub.Hub
	client *clientlink.Client
	agent  *agentMesh
}

// agentMesh is the test's agent: it dials the hub's mesh as c1.
type agentMesh struct {
	dial func(proto.MeshOpen) (net.Conn, error)
}

func newWorld(t *testing.T, c *engine.Container, hostPorts []int) *world {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if c != nil {
		if err := st.CreateContainer(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	hub := agenthub.New(backend{}, log)
	var plane *publish.Plane
	links := clientlink.NewServer(clientlink.ServerConfig{
		Dial: func(ctx context.Context, ns, _, ctr string, port int) (net.Conn, error) {
			return plane.Dial(ctx, ns, ctr, port)
		},
	})
	plane = publish.New(publish.Config{Store: st, Agents: hub, Clients: links, Local: true, LocalHostPorts: hostPorts})
	hub.SetMeshRouter(plane)
	mux := http.NewServeMux()
	mux.Handle(proto.MeshPath, hub.MeshHandler())
	mux.Handle(clientlink.Path, links)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hub.Close()
		links.Close()
		plane.Close()
		hs.Close()
	})
	u, _ := url.Parse(hs.URL)
	w := &world{st: st, plane: plane, hub: hub}
	w.client = clientlink.NewClient(clientlink.ClientConfig{Upstream: u, ClientID: "fwd-1", HostPorts: hostPorts})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.client.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	hdr := http.Header{}
	hdr.Set(proto.HeaderContainer, "default/c1")
	hdr.Set(proto.HeaderAuthorization, "Bearer s")
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http")+proto.MeshPath, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := wsmux.Mux(ws, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	go func() { // MeshDial: connect on this machine
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go proto.ServeStream(st, 10*time.Second, func(o proto.MeshOpen) (net.Conn, error) {
				return net.Dial("tcp", o.Addr)
			})
		}
	}()
	w.agent = &agentMesh{dial: func(o proto.MeshOpen) (net.Conn, error) {
		st, err := sess.OpenStream()
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return proto.DialStream(ctx, st, o)
	}}
	return w
}

func ctr(client string, cport int) *engine.Container {
	p := network.MustParsePort(strconv.Itoa(cport) + "/tcp")
	return &engine.Container{ID: "c1", Name: "web", Namespace: "default", Client: client,
		Config:     &container.Config{ExposedPorts: network.PortSet{p: {}}},
		HostConfig: &container.HostConfig{PublishAllPorts: true},
		State:      engine.State{Status: engine.StatusCreated}}
}

// TestHostDockerInternal: a container's connection to the client's
// machine reaches a port its user exposed (--expose-host-port), through
// the forwarder or the --dev control plane, and no other.
func TestHostDockerInternal(t *testing.T) {
	allowed := testnet.Port(testnet.Greeter(t, "from the client's machine"))
	closed := testnet.Port(testnet.Greeter(t, "never"))
	for _, client := range []string{"fwd-1", publish.LocalClient} {
		t.Run("created through "+client, func(t *testing.T) {
			w := newWorld(t, ctr(client, 80), []int{allowed})
			var c net.Conn
			var err error
			deadline := time.Now().Add(10 * time.Second)
			for { // the forwarder's link comes up meanwhile
				c, err = w.agent.dial(proto.MeshOpen{Kind: proto.MeshHost, Port: allowed})
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("allowed port: %v", err)
			}
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) != "from the client's machine" {
				t.Fatalf("read %q", b)
			}
			if _, err := w.agent.dial(proto.MeshOpen{Kind: proto.MeshHost, Port: closed}); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("a port not exposed: %v, want refused", err)
			}
		})
	}
}

func TestStreamsWithoutARouteAreRefused(t *testing.T) {
	w := newWorld(t, ctr(publish.LocalClient, 80), nil)
	if _, err := w.agent.dial(proto.MeshOpen{Kind: proto.MeshPeer, Container: "c2", Addr: "127.18.0.3:80"}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("peer stream: %v, want refused (no networks)", err)
	}
	if _, err := w.agent.dial(proto.MeshOpen{Kind: proto.MeshDocker}); err == nil || !strings.Contains(err.Error(), "serves no Docker socket") {
		t.Fatalf("docker stream: %v", err)
	}
}

func TestDockerStreamsGoToTheAPIAsTheContainer(t *testing.T) {
	w := newWorld(t, ctr(publish.LocalClient, 80), nil)
	var gotNS, gotID string
	w.plane.SetDocker(func(_ context.Context, ns, id string) (net.Conn, error) {
		gotNS, gotID = ns, id
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
			b.Close()
		}()
		return a, nil
	})
	c, err := w.agent.dial(proto.MeshOpen{Kind: proto.MeshDocker})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "HTTP/1.1 200 OK\r\n\r\n" || gotNS != "default" || gotID != "c1" {
		t.Fatalf("read %q as %s/%s", b, gotNS, gotID)
	}
}

func TestLocalPublishCarriesConnectionsAndFailsAsDocker(t *testing.T) {
	cport := testnet.Port(testnet.Echo(t)) // the agent of this test dials this machine
	c := ctr(publish.LocalClient, cport)
	w := newWorld(t, c, nil)
	ctx := context.Background()
	ports, err := w.plane.Publish(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	bs := ports[network.MustParsePort(strconv.Itoa(cport)+"/tcp")]
	if len(bs) == 0 {
		t.Fatalf("ports %v", ports)
	}
	conn, err := net.Dial("tcp", "127.0.0.1:"+bs[0].HostPort)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("hi"))
	b := make([]byte, 2)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "hi" {
		t.Fatalf("through the published port: %q, %v", b, err)
	}
	conn.Close()

	t.Run("a taken port gives Docker's message", func(t *testing.T) {
		other := *c
		other.ID, other.Name = "c2", "other"
		other.HostConfig = &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort(strconv.Itoa(cport) + "/tcp"): {{HostPort: bs[0].HostPort}}}}
		_, err := w.plane.Publish(ctx, &other, 1)
		want := "driver failed programming external connectivity on endpoint other ("
		suffix := "): Error starting userland proxy: listen tcp4 0.0.0.0:" + bs[0].HostPort + ": bind: address already in use"
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), suffix) || engine.KindOf(err) != engine.KindInternal {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("restore binds the recorded ports again", func(t *testing.T) {
		if err := w.plane.Unpublish(ctx, c, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := w.st.UpdateContainer(ctx, "default", "c1", func(x *engine.Container) error {
			x.Run, x.Ports, x.State.Status = 1, ports, engine.StatusRunning
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := w.plane.RestoreLocal(ctx); err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", "127.0.0.1:"+bs[0].HostPort)
		if err != nil {
			t.Fatalf("not bound again: %v", err)
		}
		conn.Close()
	})
}

// TestSiblingsPublishedPortsAtTheGateway: a connection at the gateway to
// a host port that a running container of the same client publishes goes
// straight to that container's port; other clients do not see the port.
func TestSiblingsPublishedPortsAtTheGateway(t *testing.T) {
	cport := testnet.Port(testnet.Greeter(t, "from the sibling"))
	c := ctr(publish.LocalClient, cport)
	c.Run = 1
	c.Ports = network.PortMap{network.MustParsePort(strconv.Itoa(cport) + "/tcp"): {{HostPort: "45678"}}}
	w := newWorld(t, c, nil)
	if got := w.plane.PublishedHostPorts("default", publish.LocalClient); len(got) != 1 || got[0] != 45678 {
		t.Fatalf("published host ports %v", got)
	}
	if got := w.plane.PublishedHostPorts("default", "fwd-1"); len(got) != 0 {
		t.Fatalf("another client sees %v", got)
	}
	conn, err := w.agent.dial(proto.MeshOpen{Kind: proto.MeshHost, Port: 45678})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if string(b) != "from the sibling" {
		t.Fatalf("read %q", b)
	}
	if _, err := w.agent.dial(proto.MeshOpen{Kind: proto.MeshHost, Port: 45679}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a port nobody publishes nor exposes: %v", err)
	}
}

// gatedList holds every listing of containers until gate closes, and
// counts them.
type gatedList struct {
	engine.Store
	lists atomic.Int32
	gate  chan struct{}
}

func (s *gatedList) ListContainers(ctx context.Context, ns string) ([]*engine.Container, error) {
	s.lists.Add(1)
	<-s.gate
	return s.Store.ListContainers(ctx, ns)
}

// The published ports of a namespace asked for while their read is under
// way (a starting container's view, whose network write began the read)
// join that read rather than list the containers again.
func TestPublishedPortsReadOnceAtATime(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := ctr(publish.LocalClient, 80)
	c.Run = 1
	c.Ports = network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "45678"}}}
	if err := st.CreateContainer(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	gs := &gatedList{Store: st, gate: make(chan struct{})}
	plane := publish.New(publish.Config{Store: gs})
	t.Cleanup(func() { plane.Close() })
	got := make(chan []int, 2)
	for range 2 {
		go func() { got <- plane.PublishedHostPorts("default", publish.LocalClient) }()
	}
	for deadline := time.Now().Add(5 * time.Second); gs.lists.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no listing")
		}
	}
	time.Sleep(50 * time.Millisecond) // the second asks meanwhile
	close(gs.gate)
	for range 2 {
		if ports := <-got; len(ports) != 1 || ports[0] != 45678 {
			t.Fatalf("published host ports %v", ports)
		}
	}
	if n := gs.lists.Load(); n != 1 {
		t.Fatalf("containers listed %d times, want once", n)
	}
}
