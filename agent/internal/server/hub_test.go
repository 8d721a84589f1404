package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
)

// hub is a small agent hub for this package's tests, on a real WebSocket
// server speaking proto: it stores output deduplicated by sequence number
// (as the control plane's hub does with the container's acked numbers),
// acknowledges it under a configurable policy and records everything.
type hub struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	conns       []*hubConn
	hellos      []proto.Hello
	out         map[uint32]*bytes.Buffer
	stored      map[uint32]uint64  // highest seq stored, per stream
	cum         map[uint32][]int64 // bytes stored up to seq, per stream
	ackedSent   map[uint32]uint64  // highest seq acknowledged, per stream
	maxInflight map[uint32]int64
	credits     map[uint32]uint64 // stdin bytes credited, per stream
	dups        int
	frames      []proto.Frame // control frames and data headers, in arrival order
	exits       []proto.Exit
	started     []proto.Started
	execStarted []proto.ExecStarted
	execExits   []proto.ExecExit
	refused     int
	meshes      []*yamux.Session // mesh connections, in order

	// Policy, set by the test.
	holdAcks   bool          // queue acks until released
	stallEvery int64         // pause acking after each this many bytes
	stallFor   time.Duration // for this long
	noExitAck  bool          // never acknowledge exits
	ended      bool          // refuse every dial as an ended instance (proto.StatusInstanceEnded)
	// noExecExitAck leaves exec exits unacknowledged (the test acks them).
	noExecExitAck bool
}

type hubConn struct {
	h     *hub
	c     *websocket.Conn
	acks  chan proto.Frame
	close context.CancelFunc
}

func newHub(t *testing.T, secret string) *hub {
	h := &hub{
		t: t, secret: secret, changed: make(chan struct{}),
		out: map[uint32]*bytes.Buffer{}, stored: map[uint32]uint64{}, cum: map[uint32][]int64{},
		ackedSent: map[uint32]uint64{}, maxInflight: map[uint32]int64{}, credits: map[uint32]uint64{},
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hub) url() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") }

// notifyLocked wakes waiters.
func (h *hub) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// waitFor waits until cond (called with mu held) holds.
func (h *hub) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		ok := cond()
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	ended := h.ended
	if ended && r.URL.Path == proto.ConnectPath {
		h.refused++
		h.notifyLocked()
	}
	h.mu.Unlock()
	if ended {
		http.Error(w, "the control plane has ended this instance", proto.StatusInstanceEnded)
		return
	}
	if r.URL.Path == proto.MeshPath && r.Header.Get(proto.HeaderAuthorization) == "Bearer "+h.secret {
		h.serveMesh(w, r)
		return
	}
	if r.URL.Path != proto.ConnectPath || r.Header.Get(proto.HeaderAuthorization) != "Bearer "+h.secret {
		h.mu.Lock()
		h.refused++
		h.notifyLocked()
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
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	hc := &hubConn{h: h, c: c, acks: make(chan proto.Frame, 1<<16), close: cancel}
	go hc.acker(ctx)
	first := true
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		f, err := proto.Unmarshal(b)
		if err != nil {
			h.t.Errorf("hub: bad frame: %v", err)
			return
		}
		if first {
			var hello proto.Hello
			if f.Type != proto.TypeHello || f.Decode(&hello) != nil {
				h.t.Errorf("hub: first frame is %v, want hello", f.Type)
				return
			}
			if got := r.Header.Get(proto.HeaderContainer); got != hello.ContainerID {
				h.t.Errorf("hub: container header %q, hello %q", got, hello.ContainerID)
			}
			first = false
			h.mu.Lock()
			h.conns = append(h.conns, hc)
			h.hellos = append(h.hellos, hello)
			h.notifyLocked()
			h.mu.Unlock()
			continue
		}
		h.receive(hc, f)
	}
}

// serveMesh keeps an agent's mesh connection until it ends; tests use it
// through h.mesh.
func (h *hub) serveMesh(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	sess, err := wsmux.Mux(ws, false, nil)
	if err != nil {
		h.t.Errorf("hub: mesh: %v", err)
		return
	}
	h.mu.Lock()
	h.meshes = append(h.meshes, sess)
	h.notifyLocked()
	h.mu.Unlock()
	select {
	case <-sess.CloseChan():
	case <-r.Context().Done():
		sess.Close()
	}
}

// mesh waits for the agent's latest mesh connection.
func (h *hub) mesh(t *testing.T) *yamux.Session {
	t.Helper()
	var s *yamux.Session
	h.waitFor(t, "a mesh connection", 10*time.Second, func() bool {
		if n := len(h.meshes); n > 0 && !h.meshes[n-1].IsClosed() {
			s = h.meshes[n-1]
			return true
		}
		return false
	})
	return s
}

// receive records one frame from the agent.
func (h *hub) receive(hc *hubConn, f proto.Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.notifyLocked()
	rec := f
	if f.Type == proto.TypeData {
		rec.Payload = nil
	}
	h.frames = append(h.frames, rec)
	switch f.Type {
	case proto.TypeData:
		st := h.stored[f.Stream]
		switch {
		case f.Seq <= st:
			h.dups++
		case f.Seq == st+1:
			if h.out[f.Stream] == nil {
				h.out[f.Stream] = &bytes.Buffer{}
				h.cum[f.Stream] = []int64{0}
			}
			h.out[f.Stream].Write(f.Payload)
			cum := h.cum[f.Stream]
			h.cum[f.Stream] = append(cum, cum[len(cum)-1]+int64(len(f.Payload)))
			h.stored[f.Stream] = f.Seq
			inflight := h.cum[f.Stream][f.Seq] - h.cum[f.Stream][h.ackedSent[f.Stream]]
			h.maxInflight[f.Stream] = max(h.maxInflight[f.Stream], inflight)
		default:
			h.t.Errorf("hub: stream %d seq %d after %d: a gap", f.Stream, f.Seq, st)
			return
		}
		hc.acks <- proto.Frame{Type: proto.TypeAck, Stream: f.Stream, Seq: f.Seq}
	case proto.TypeStarted:
		var s proto.Started
		if err := f.Decode(&s); err != nil {
			h.t.Errorf("hub: %v", err)
		}
		h.started = append(h.started, s)
	case proto.TypeExit:
		var e proto.Exit
		if err := f.Decode(&e); err != nil {
			h.t.Errorf("hub: %v", err)
		}
		h.exits = append(h.exits, e)
		if !h.noExitAck {
			go hc.control(proto.TypeExitAck, proto.ExitAck{Run: e.Run})
		}
	case proto.TypeExecStarted:
		var s proto.ExecStarted
		if err := f.Decode(&s); err != nil {
			h.t.Errorf("hub: %v", err)
		}
		h.execStarted = append(h.execStarted, s)
	case proto.TypeExecExit:
		var e proto.ExecExit
		if err := f.Decode(&e); err != nil {
			h.t.Errorf("hub: %v", err)
		}
		h.execExits = append(h.execExits, e)
		if !h.noExecExitAck {
			go hc.control(proto.TypeExecExitAck, proto.ExecExitAck{ID: e.ID})
		}
	case proto.TypeStdinCredit:
		h.credits[f.Stream] += f.Seq
	case proto.TypeListening: // recorded in frames
	default:
		h.t.Errorf("hub: unexpected %v from agent", f.Type)
	}
}

// credited returns the stdin bytes of stream the agent has credited.
func (h *hub) credited(stream uint32) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.credits[stream]
}

// acker acknowledges stored frames in order, under the hub's policy.
func (hc *hubConn) acker(ctx context.Context) {
	h := hc.h
	var acked int64
	for {
		var f proto.Frame
		select {
		case f = <-hc.acks:
		case <-ctx.Done():
			return
		}
		for {
			h.mu.Lock()
			hold, ch := h.holdAcks, h.changed
			h.mu.Unlock()
			if !hold {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		h.mu.Lock()
		size := h.cum[f.Stream][f.Seq] - h.cum[f.Stream][f.Seq-1]
		every, stall := h.stallEvery, h.stallFor
		h.mu.Unlock()
		if every > 0 && (acked+size)/every != acked/every {
			select {
			case <-time.After(stall):
			case <-ctx.Done():
				return
			}
		}
		acked += size
		// Count the ack as sent before writing it: the agent may answer it
		// with new data before Write returns here.
		h.mu.Lock()
		h.ackedSent[f.Stream] = max(h.ackedSent[f.Stream], f.Seq)
		h.notifyLocked()
		h.mu.Unlock()
		if err := hc.c.Write(ctx, websocket.MessageBinary, f.Marshal()); err != nil {
			return
		}
	}
}

// control sends a control frame to the agent.
func (hc *hubConn) control(typ proto.Type, v any) error {
	f, err := proto.Control(typ, v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hc.c.Write(ctx, websocket.MessageBinary, f.Marshal())
}

// conn waits for the n-th connection (1-based) to have said hello.
func (h *hub) conn(t *testing.T, n int) *hubConn {
	t.Helper()
	h.waitFor(t, "agent connection", 15*time.Second, func() bool { return len(h.conns) >= n })
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[n-1]
}

// send sends a control frame on the latest connection.
func (h *hub) send(t *testing.T, typ proto.Type, v any) {
	t.Helper()
	h.mu.Lock()
	hc := h.conns[len(h.conns)-1]
	h.mu.Unlock()
	if err := hc.control(typ, v); err != nil {
		t.Fatalf("hub send %v: %v", typ, err)
	}
}

// sendFrame sends a raw frame on the latest connection.
func (h *hub) sendFrame(t *testing.T, f proto.Frame) {
	t.Helper()
	h.mu.Lock()
	hc := h.conns[len(h.conns)-1]
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hc.c.Write(ctx, websocket.MessageBinary, f.Marshal()); err != nil {
		t.Fatalf("hub send %v: %v", f.Type, err)
	}
}

func (h *hub) exit(t *testing.T, run uint32) proto.Exit {
	t.Helper()
	var e proto.Exit
	h.waitFor(t, "exit of the run", 30*time.Second, func() bool {
		for _, x := range h.exits {
			if x.Run == run {
				e = x
				return true
			}
		}
		return false
	})
	return e
}

func (h *hub) startedRun(t *testing.T, run uint32) proto.Started {
	t.Helper()
	var s proto.Started
	h.waitFor(t, "started", 15*time.Second, func() bool {
		for _, x := range h.started {
			if x.Run == run {
				s = x
				return true
			}
		}
		return false
	})
	return s
}

func (h *hub) output(stream uint32) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.out[stream]; b != nil {
		return b.String()
	}
	return ""
}

func (h *hub) waitOutput(t *testing.T, stream uint32, sub string) {
	t.Helper()
	h.waitFor(t, "output "+sub, 15*time.Second, func() bool {
		b := h.out[stream]
		return b != nil && strings.Contains(b.String(), sub)
	})
}

// execExit waits for the first ExecExit of exec id.
func (h *hub) execExit(t *testing.T, id string) proto.ExecExit {
	t.Helper()
	var e proto.ExecExit
	h.waitFor(t, "exit of exec "+id, 30*time.Second, func() bool {
		for _, x := range h.execExits {
			if x.ID == id {
				e = x
				return true
			}
		}
		return false
	})
	return e
}

// execExitCount is how many ExecExit frames of exec id arrived.
func (h *hub) execExitCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, x := range h.execExits {
		if x.ID == id {
			n++
		}
	}
	return n
}

// startedExec waits for the ExecStarted of exec id.
func (h *hub) startedExec(t *testing.T, id string) proto.ExecStarted {
	t.Helper()
	var s proto.ExecStarted
	h.waitFor(t, "exec "+id+" started", 15*time.Second, func() bool {
		for _, x := range h.execStarted {
			if x.ID == id {
				s = x
				return true
			}
		}
		return false
	})
	return s
}
