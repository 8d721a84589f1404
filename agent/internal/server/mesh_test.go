package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/internal/instance"
	"github.com/sockerless/sockerless/agent/proto"
)

// upperServer accepts connections, reads each to EOF, then answers with
// what it read in upper case and closes: a server that needs the client's
// half-close to answer. It stands for a process in the container (the test
// runs the agent on the host).
func upperServer(t *testing.T) string {
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
				b, _ := io.ReadAll(c)
				c.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()
	return ln.Addr().String()
}

// dialAgent opens a MeshDial stream to the agent as the hub does.
func dialAgent(t *testing.T, h *hub, addr string) (net.Conn, error) {
	t.Helper()
	st, err := h.mesh(t).OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c := proto.StreamConn(st)
	if err := proto.OpenMesh(c, proto.MeshOpen{Kind: proto.MeshDial, Addr: addr}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func TestMeshDialReachesAServerInside(t *testing.T) {
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	a.invoke(invocation(h, 30))
	h.conn(t, 1)
	addr := upperServer(t)

	c, err := dialAgent(t, h, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello mesh")); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HELLO MESH" {
		t.Fatalf("read %q, %v; want the server's answer after the half-close", got, err)
	}
}

func TestMeshDialToAPortNobodyListensOnIsRefused(t *testing.T) {
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	a.invoke(invocation(h, 30))
	h.conn(t, 1)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()

	_, err := dialAgent(t, h, addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of a closed port: %v, want refused", err)
	}
}

// fakeNetwork records the views it is given and keeps its deps.
type fakeNetwork struct {
	mu     sync.Mutex
	views  []proto.NetworkView
	deps   instance.NetworkDeps
	closed bool
	got    chan struct{}
}

func (n *fakeNetwork) Apply(_ context.Context, v proto.NetworkView) error {
	n.mu.Lock()
	n.views = append(n.views, v)
	n.mu.Unlock()
	n.got <- struct{}{}
	return nil
}

func (n *fakeNetwork) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return nil
}

func TestNetworkViewsAndMeshStreamsFromTheContainer(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	fn := &fakeNetwork{got: make(chan struct{}, 8)}
	a := startAgent(t, func(c *Config) {
		c.NewNetwork = func(d instance.NetworkDeps) instance.Network {
			fn.deps = d
			return fn
		}
	})
	a.invoke(invocation(h, 30))
	h.conn(t, 1)

	t.Run("the view in Start is applied before the process starts", func(t *testing.T) {
		view := proto.NetworkView{Hosts: []proto.HostEntry{{IP: "127.18.0.2", Names: []string{"db"}}}}
		h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("sleep 30"), Network: &view})
		h.startedRun(t, 1)
		fn.mu.Lock()
		defer fn.mu.Unlock()
		if len(fn.views) != 1 || fn.views[0].Hosts[0].Names[0] != "db" {
			t.Fatalf("views before the process ran: %+v", fn.views)
		}
	})
	t.Run("a network frame replaces the view", func(t *testing.T) {
		h.send(t, proto.TypeNetwork, proto.NetworkView{DNS: true})
		select {
		case <-fn.got:
		case <-time.After(10 * time.Second):
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			fn.mu.Lock()
			n := len(fn.views)
			last := fn.views[n-1]
			fn.mu.Unlock()
			if n == 2 && last.DNS {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d views, last %+v", n, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("listening ports reach the hub", func(t *testing.T) {
		fn.deps.Listening([]int{80, 5432})
		h.waitFor(t, "a listening frame", 10*time.Second, func() bool {
			for _, f := range h.frames {
				var l proto.Listening
				if f.Type == proto.TypeListening && f.Decode(&l) == nil && len(l.Ports) == 2 {
					return true
				}
			}
			return false
		})
	})
	t.Run("a stream the container opens reaches the hub", func(t *testing.T) {
		sess := h.mesh(t)
		go func() {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			c := proto.StreamConn(st)
			var open proto.MeshOpen
			if err := proto.ReadLine(c, &open); err != nil || open.Kind != proto.MeshHost || open.Port != 5000 {
				t.Errorf("opening %+v, %v", open, err)
			}
			proto.AnswerMesh(c, nil)
			c.Write([]byte("from the host"))
			c.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := fn.deps.Dial(ctx, proto.MeshOpen{Kind: proto.MeshHost, Port: 5000})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "from the host" {
			t.Fatalf("read %q, %v", got, err)
		}
	})
}
