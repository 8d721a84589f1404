package agenthub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
	"github.com/sockerless/sockerless/services/internal/testnet"
)

// meshAgent is the test side of an agent's mesh: it answers MeshDial
// streams by connecting to the address on this host, as the agent does
// inside its instance.
type meshAgent struct {
	sess *yamux.Session
}

// dialMesh connects a mesh as the agent of id with secret.
func (e *testEnv) dialMesh(t testing.TB, id, secret string) (*meshAgent, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	hdr.Set(proto.HeaderContainer, id)
	hdr.Set(proto.HeaderAuthorization, "Bearer "+secret)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, e.meshURL, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: e.client})
	if err != nil {
		return nil, resp, err
	}
	sess, err := wsmux.Mux(ws, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	m := &meshAgent{sess: sess}
	go m.serve()
	return m, resp, nil
}

func (m *meshAgent) serve() {
	for {
		st, err := m.sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			c := proto.StreamConn(st)
			var open proto.MeshOpen
			if err := proto.ReadLine(c, &open); err != nil {
				c.Close()
				return
			}
			tc, err := net.Dial("tcp", open.Addr)
			proto.AnswerMesh(c, err)
			if err != nil {
				c.Close()
				return
			}
			proto.Splice(c, tc)
		}()
	}
}

// open opens a stream from the agent to the hub.
func (m *meshAgent) open(open proto.MeshOpen) (net.Conn, error) {
	st, err := m.sess.OpenStream()
	if err != nil {
		return nil, err
	}
	c := proto.StreamConn(st)
	if err := proto.OpenMesh(c, open); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDialMeshReachesTheAgent(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
	if _, _, err := env.dialMesh(t, "c1", "s"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("bytes go both ways and the half-close passes", func(t *testing.T) {
		c, err := env.hub.DialMesh(ctx, "c1", proto.MeshOpen{Kind: proto.MeshDial, Addr: testnet.Echo(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want := bytes.Repeat([]byte("abc"), 1<<20)
		go func() {
			c.Write(want)
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("echo returned %d bytes, %v; want %d", len(got), err, len(want))
		}
	})
	t.Run("a port nobody listens on is refused", func(t *testing.T) {
		_, err := env.hub.DialMesh(ctx, "c1", proto.MeshOpen{Kind: proto.MeshDial, Addr: closedPort(t)})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want refused", err)
		}
	})
	t.Run("100 parallel connections each get their own bytes", func(t *testing.T) {
		addr := testnet.Echo(t)
		testnet.Parallel(t, 100, func(i int) error {
			c, err := env.hub.DialMesh(ctx, "c1", proto.MeshOpen{Kind: proto.MeshDial, Addr: addr})
			if err != nil {
				return err
			}
			defer c.Close()
			want := bytes.Repeat([]byte(fmt.Sprintf("%03d", i)), 50_000)
			go func() {
				c.Write(want)
				c.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, want) {
				return fmt.Errorf("%d bytes, %v", len(got), err)
			}
			return nil
		})
	})
}

func TestMeshDialWithoutTheSecretIsRefusedAndNeverTakesOver(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
	if _, _, err := env.dialMesh(t, "c1", "s"); err != nil {
		t.Fatal(err)
	}
	_, resp, err := env.dialMesh(t, "c1", "wrong")
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with a wrong secret: %v (%v), want 401", err, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := env.hub.DialMesh(ctx, "c1", proto.MeshOpen{Kind: proto.MeshDial, Addr: testnet.Echo(t)})
	if err != nil {
		t.Fatalf("the live mesh is gone after a refused dial: %v", err)
	}
	c.Close()
}

// fakeRouter routes MeshHost streams to a server of the test.
type fakeRouter struct{ addr string }

func (r fakeRouter) RouteMesh(_ context.Context, id string, open proto.MeshOpen) (net.Conn, error) {
	if id != "c1" || open.Kind != proto.MeshHost || open.Port != 5000 {
		return nil, fmt.Errorf("%w: port %d not allowed", proto.ErrRefused, open.Port)
	}
	return net.Dial("tcp", r.addr)
}

func TestStreamsTheAgentOpensAreRouted(t *testing.T) {
	tests := []struct {
		name    string
		router  MeshRouter
		port    int
		refused bool
	}{
		{"routed stream carries bytes", fakeRouter{}, 5000, false},
		{"stream the router refuses is refused", fakeRouter{}, 6000, true},
		{"no router refuses every stream", nil, 5000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), func(h *Hub) {
				if r, ok := tt.router.(fakeRouter); ok {
					r.addr = testnet.Echo(t)
					h.SetMeshRouter(r)
				}
			})
			m, _, err := env.dialMesh(t, "c1", "s")
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "mesh registered", func() bool {
				env.hub.mu.Lock()
				defer env.hub.mu.Unlock()
				return env.hub.meshes["c1"] != nil
			})
			c, err := m.open(proto.MeshOpen{Kind: proto.MeshHost, Port: tt.port})
			if tt.refused {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Fatalf("err = %v, want refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("hi"))
			c.(interface{ CloseWrite() error }).CloseWrite()
			got, _ := io.ReadAll(c)
			if string(got) != "hi" {
				t.Fatalf("read %q", got)
			}
		})
	}
}

func TestListeningReachesTheBackend(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)
	a.control(proto.TypeListening, proto.Listening{Ports: []int{80, 443}})
	waitFor(t, "listening stored", func() bool {
		return strings.Contains(strings.Join(b.eventList(), ";"), "listening c1 [80 443]")
	})
}

func TestNetworkViewReachesTheAgent(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
	a := env.connect(t, "c1", 0)
	a.expectNone(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := env.hub.Session(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.(*session).Network(ctx, proto.NetworkView{DNS: true}); err != nil {
		t.Fatal(err)
	}
	var v proto.NetworkView
	if err := a.expect(proto.TypeNetwork).Decode(&v); err != nil || !v.DNS {
		t.Fatalf("view %+v, %v", v, err)
	}
}

// BenchmarkControlLatencyDuringBulk measures why the mesh is a WebSocket
// of its own. The agent's connections read at most 16 MB/s each (a link
// slower than the hub's writes, as Cloud Run's is: the kernel's socket
// buffers fill up). While 64 MiB flow through the mesh, it measures the
// round trip of a small message (a) on the control connection (a Request
// the agent answers) and (b) on a second stream of the mesh itself, as a
// control frame sharing the mesh's WebSocket would travel.
func BenchmarkControlLatencyDuringBulk(b *testing.B) {
	env := newTestEnv(b, newFakeBackend(map[string]string{"c1": "s"}), nil)
	env.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &slowReader{Conn: c, rate: 16 << 20}, nil
	}}}
	if _, _, err := env.dialMesh(b, "c1", "s"); err != nil {
		b.Fatal(err)
	}
	a := env.connect(b, "c1", 0)
	go func() { // the agent answers Requests at once
		for f := range a.frames {
			if f.Type == proto.TypeRequest {
				var r proto.Request
				f.Decode(&r)
				a.control(proto.TypeResponse, proto.Response{ID: r.ID, Body: []byte("{}")})
			}
		}
	}()
	ctx := context.Background()
	sess, err := env.hub.Session(ctx, "c1")
	if err != nil {
		b.Fatal(err)
	}
	echo := testnet.Echo(b)
	rtt := func(shared bool) time.Duration {
		const n = 20
		var samples []time.Duration
		var c net.Conn
		if shared {
			c, err = env.hub.DialMesh(ctx, "c1", proto.MeshOpen{Kind: proto.MeshDial, Addr: echo})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
		}
		buf := make([]byte, 1)
		for i := 0; i < n; i++ {
			start := time.Now()
			if shared {
				c.Write([]byte{1})
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			} else if _, err := sess.(*session).Request(ctx, proto.RequestTop, nil); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
			time.Sleep(20 * time.Millisecond)
		}
		sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
		return samples[n/2]
	}
	idleCtl, idleMesh := rtt(false), rtt(true)
	bulkDone := make(chan struct{})
	go func() { // 64 MiB to the agent and back
		defer close(bulkDone)
		c, err := env.hub.DialMesh(ctx, "c1", proto.MeshOpen{Kind: proto.MeshDial, Addr: echo})
		if err != nil {
			return
		}
		go func() {
			c.Write(make([]byte, 64<<20))
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		io.Copy(io.Discard, c)
		c.Close()
	}()
	time.Sleep(200 * time.Millisecond)
	bulkCtl, bulkMesh := rtt(false), rtt(true)
	<-bulkDone
	b.ReportMetric(float64(idleCtl.Microseconds()), "idle-control-µs")
	b.ReportMetric(float64(bulkCtl.Microseconds()), "bulk-control-µs")
	b.ReportMetric(float64(idleMesh.Microseconds()), "idle-shared-µs")
	b.ReportMetric(float64(bulkMesh.Microseconds()), "bulk-shared-µs")
}

// slowReader reads at most rate bytes a second.
type slowReader struct {
	net.Conn
	rate int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := s.Conn.Read(p)
	time.Sleep(time.Duration(n) * time.Second / time.Duration(s.rate))
	return n, err
}
