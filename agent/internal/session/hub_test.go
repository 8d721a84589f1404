package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
)

// testHub is a minimal hub for this package's tests: it checks the secret,
// accepts the WebSocket and hands each connection to the test.
type testHub struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	conns  chan *hubConn

	mu      sync.Mutex
	refused int
	noRead  bool // accept but never read (pongs are never sent)
	ended   bool // refuse every dial as an ended instance (proto.StatusInstanceEnded)
}

type hubConn struct {
	c      *websocket.Conn
	header http.Header
	hello  proto.Hello
	frames chan proto.Frame // closed when the connection ends
	done   chan struct{}    // close to end the connection from the test
}

func newTestHub(t *testing.T, secret string) *testHub {
	h := &testHub{t: t, secret: secret, conns: make(chan *hubConn, 16)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *testHub) url() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") }

func (h *testHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	ended := h.ended
	if ended {
		h.refused++
	}
	h.mu.Unlock()
	if ended {
		http.Error(w, "the control plane has ended this instance", proto.StatusInstanceEnded)
		return
	}
	if r.URL.Path != proto.ConnectPath || r.Header.Get(proto.HeaderAuthorization) != "Bearer "+h.secret {
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 22)
	hc := &hubConn{c: c, header: r.Header.Clone(), frames: make(chan proto.Frame, 1<<16), done: make(chan struct{})}
	h.mu.Lock()
	noRead := h.noRead
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-hc.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	_, b, err := c.Read(ctx)
	if err != nil {
		return
	}
	f, err := proto.Unmarshal(b)
	if err != nil || f.Type != proto.TypeHello || f.Decode(&hc.hello) != nil {
		h.t.Errorf("first frame %v %v, want hello", f.Type, err)
		return
	}
	h.conns <- hc
	defer close(hc.frames)
	if noRead {
		<-ctx.Done()
		return
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		f, err := proto.Unmarshal(b)
		if err != nil {
			h.t.Errorf("bad frame: %v", err)
			return
		}
		hc.frames <- f
	}
}

// next waits for the next connection.
func (h *testHub) next(t *testing.T) *hubConn {
	t.Helper()
	select {
	case hc := <-h.conns:
		return hc
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not connect")
		return nil
	}
}

// frame waits for the next frame on hc.
func (hc *hubConn) frame(t *testing.T) proto.Frame {
	t.Helper()
	select {
	case f, ok := <-hc.frames:
		if !ok {
			t.Fatal("connection ended")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame from agent")
		return proto.Frame{}
	}
}

// send writes f to the agent.
func (hc *hubConn) send(t *testing.T, f proto.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hc.c.Write(ctx, websocket.MessageBinary, f.Marshal()); err != nil {
		t.Fatalf("hub write: %v", err)
	}
}

func (hc *hubConn) control(t *testing.T, typ proto.Type, v any) {
	t.Helper()
	f, err := proto.Control(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	hc.send(t, f)
}

// recorder is a Handler that records the hub's commands.
type recorder struct {
	mu     sync.Mutex
	events []string
	got    chan string
}

func newRecorder() *recorder { return &recorder{got: make(chan string, 64)} }

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.got <- e
}

func (r *recorder) Start(s proto.Start)         { r.add("start " + strings.Join(s.Process.Args, " ")) }
func (r *recorder) Stdin(_ uint32, p []byte)    { r.add("stdin " + string(p)) }
func (r *recorder) StdinClose(uint32)           { r.add("stdin-close") }
func (r *recorder) ExecStart(e proto.ExecStart) { r.add("exec-start " + e.ID) }
func (r *recorder) Resize(proto.Resize)         {}
func (r *recorder) Request(proto.Request)       {}
func (r *recorder) Shutdown()                   { r.add("shutdown") }
func (r *recorder) Network(v proto.NetworkView) {
	r.add("network " + strconv.Itoa(len(v.Listen)) + " listen")
}

func (r *recorder) Signal(s proto.Signal) {
	e := "signal " + strconv.Itoa(s.Signal)
	if s.All {
		e += " all"
	}
	r.add(e)
}

// running is a Session's Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // Run's result, once done
}

// runSession runs s until the test ends.
func runSession(t *testing.T, s *Session) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = s.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("session Run did not return")
		}
	})
	return r
}

// wait waits for Run to return and gives its error.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}
