package mesh

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
)

// fakeHub accepts mesh connections with the right credentials and hands
// each session to the test.
type fakeHub struct {
	srv      *httptest.Server
	sessions chan *yamux.Session
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{sessions: make(chan *yamux.Session, 8)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != proto.MeshPath || r.Header.Get(proto.HeaderContainer) != "c1" || r.Header.Get(proto.HeaderAuthorization) != "Bearer s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		s, err := wsmux.Mux(ws, false, nil)
		if err != nil {
			return
		}
		h.sessions <- s
		<-s.CloseChan()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHub) next(t *testing.T) *yamux.Session {
	t.Helper()
	select {
	case s := <-h.sessions:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the mesh did not connect")
		return nil
	}
}

func runMesh(t *testing.T, h *fakeHub) *Mesh {
	m := New(Config{CallbackURL: "ws" + strings.TrimPrefix(h.srv.URL, "http"), ContainerID: "c1", Secret: "s3cret",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return m
}

// answerOne accepts one stream on s, checks its opening and answers it
// with a greeting.
func answerOne(t *testing.T, s *yamux.Session, greeting string) {
	go func() {
		st, err := s.AcceptStream()
		if err != nil {
			return
		}
		c := proto.StreamConn(st)
		var o proto.MeshOpen
		if err := proto.ReadLine(c, &o); err != nil || o.Kind != proto.MeshPeer {
			t.Errorf("opening %+v %v", o, err)
		}
		proto.AnswerMesh(c, nil)
		c.Write([]byte(greeting))
		c.Close()
	}()
}

func dialRead(t *testing.T, m *Mesh) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.Dial(ctx, proto.MeshOpen{Kind: proto.MeshPeer, Container: "peer", Addr: "127.18.0.3:80"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDialUsesTheCurrentConnectionAcrossDrops(t *testing.T) {
	h := newFakeHub(t)
	m := runMesh(t, h)
	s1 := h.next(t)
	answerOne(t, s1, "first")
	if got := dialRead(t, m); got != "first" {
		t.Fatalf("read %q", got)
	}
	s1.Close() // the hub drops the mesh; the agent dials again
	s2 := h.next(t)
	answerOne(t, s2, "second")
	if got := dialRead(t, m); got != "second" {
		t.Fatalf("after the drop read %q", got)
	}
}

func TestDialWaitsForTheMeshUntilItsContextEnds(t *testing.T) {
	m := New(Config{CallbackURL: "ws://127.0.0.1:1", ContainerID: "c1", Secret: "s3cret"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.Dial(ctx, proto.MeshOpen{Kind: proto.MeshHost, Port: 1}); err == nil {
		t.Fatal("Dial without a mesh succeeded")
	}
}
