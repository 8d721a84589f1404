package agenthub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// fakeBackend is a hand-written in-memory Backend that records what the hub
// stores, in order.
type fakeBackend struct {
	mu      sync.Mutex
	secrets map[string]string
	acked   map[string]map[uint32]uint64
	logs    map[string][]engine.LogEntry
	exits   map[string][]proto.Exit
	events  []string
	batches []int // entries per StoreOutput call
	gone    chan string

	// If gate is set, StoreOutput signals entered and waits on gate.
	gate    chan struct{}
	entered chan struct{}
	// If failOutput is set, StoreOutput fails (once per value).
	failOutput error
	// linger is its OutputLinger; joined counts StoreOutputExit calls.
	linger time.Duration
	joined int
}

func newFakeBackend(secrets map[string]string) *fakeBackend {
	return &fakeBackend{
		secrets: secrets,
		acked:   make(map[string]map[uint32]uint64),
		logs:    make(map[string][]engine.LogEntry),
		exits:   make(map[string][]proto.Exit),
		gone:    make(chan string, 16),
	}
}

func (b *fakeBackend) AuthorizeAgent(_ context.Context, id, secret string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id == "flaky" {
		return engine.Errorf(engine.KindUnavailable, "store down")
	}
	if id == "ended" {
		return engine.ErrInstanceEnded
	}
	want, ok := b.secrets[id]
	if !ok {
		return engine.Errorf(engine.KindNotFound, "no such container")
	}
	if want != secret {
		return engine.Errorf(engine.KindUnauthorized, "wrong secret")
	}
	return nil
}

func (b *fakeBackend) AgentAcked(_ context.Context, id string) (map[uint32]uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[uint32]uint64)
	for s, seq := range b.acked[id] {
		out[s] = seq
	}
	return out, nil
}

func (b *fakeBackend) StoreOutput(ctx context.Context, id string, entries []engine.LogEntry, acked map[uint32]uint64) error {
	if b.gate != nil {
		b.entered <- struct{}{}
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failOutput != nil {
		err := b.failOutput
		b.failOutput = nil
		return err
	}
	if b.acked[id] == nil {
		b.acked[id] = make(map[uint32]uint64)
	}
	for s, seq := range acked {
		b.acked[id][s] = seq
	}
	for _, e := range entries {
		e.Seq = uint64(len(b.logs[id]) + 1)
		b.logs[id] = append(b.logs[id], e)
		b.events = append(b.events, fmt.Sprintf("out %d %s", e.Stream, e.Data))
	}
	b.batches = append(b.batches, len(entries))
	return nil
}

func (b *fakeBackend) StoreExit(_ context.Context, id string, e proto.Exit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.exits[id] = append(b.exits[id], e)
	b.events = append(b.events, fmt.Sprintf("exit %d", e.Run))
	return nil
}

func (b *fakeBackend) StoreOutputExit(ctx context.Context, id string, entries []engine.LogEntry, acked map[uint32]uint64, e proto.Exit) error {
	if err := b.StoreOutput(ctx, id, entries, acked); err != nil {
		return err
	}
	b.mu.Lock()
	b.joined++
	b.mu.Unlock()
	return b.StoreExit(ctx, id, e)
}

func (b *fakeBackend) OutputLinger() time.Duration { return b.linger }

func (b *fakeBackend) StoreExecExit(_ context.Context, id string, e proto.ExecExit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, fmt.Sprintf("exec-exit %s %d", e.ID, e.Code))
	return nil
}

func (b *fakeBackend) AgentListening(_ context.Context, id string, ports []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, fmt.Sprintf("listening %s %v", id, ports))
}

func (b *fakeBackend) AgentGone(id string) {
	select {
	case b.gone <- id:
	default:
	}
}

// logText returns the stored output of id as "stream:data" joined by ",".
func (b *fakeBackend) logText(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var parts []string
	for _, e := range b.logs[id] {
		parts = append(parts, fmt.Sprintf("%d:%s", e.Stream, e.Data))
	}
	return strings.Join(parts, ",")
}

func (b *fakeBackend) eventList() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.events...)
}

// testEnv is a hub mounted at proto.ConnectPath on an httptest.Server.
type testEnv struct {
	hub     *Hub
	backend *fakeBackend
	srv     *httptest.Server
	url     string
	meshURL string
	// client dials the agent's WebSockets (nil: the default).
	client *http.Client
}

func newTestEnv(t testing.TB, b *fakeBackend, tune func(*Hub)) *testEnv {
	t.Helper()
	h := New(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.reconnectGrace = 2 * time.Second
	if tune != nil {
		tune(h)
	}
	mux := http.NewServeMux()
	mux.Handle(proto.ConnectPath, h)
	mux.Handle(proto.MeshPath, h.MeshHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = h.Close()
		srv.Close()
	})
	base := "ws" + strings.TrimPrefix(srv.URL, "http")
	return &testEnv{hub: h, backend: b, srv: srv, url: base + proto.ConnectPath, meshURL: base + proto.MeshPath}
}

// testAgent is the test side of an agent connection: it speaks proto and
// collects every frame the hub sends.
type testAgent struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan proto.Frame
	closed chan struct{}
	err    error // why reading ended; valid once closed is closed
}

// dial connects as the agent of id with secret (headers omitted when empty).
func (e *testEnv) dial(t testing.TB, id, secret string) (*testAgent, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	if id != "" {
		hdr.Set(proto.HeaderContainer, id)
	}
	if secret != "" {
		hdr.Set(proto.HeaderAuthorization, secret)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: e.client})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(readLimit)
	a := &testAgent{t: t, ws: ws, frames: make(chan proto.Frame, 256), closed: make(chan struct{})}
	go a.readLoop()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return a, resp, nil
}

// connect dials with the right secret and sends Hello.
func (e *testEnv) connect(t testing.TB, id string, running uint32) *testAgent {
	t.Helper()
	a, _, err := e.dial(t, id, "Bearer "+e.backend.secrets[id])
	if err != nil {
		t.Fatalf("dial agent %s: %v", id, err)
	}
	a.control(proto.TypeHello, proto.Hello{ContainerID: id, Running: running})
	waitFor(t, "agent registered", func() bool { return e.hub.Connected(id) })
	return a
}

func (a *testAgent) readLoop() {
	defer close(a.closed)
	for {
		_, b, err := a.ws.Read(context.Background())
		if err != nil {
			a.err = err
			return
		}
		f, err := proto.Unmarshal(b)
		if err != nil {
			a.err = err
			return
		}
		a.frames <- f
	}
}

func (a *testAgent) send(f proto.Frame) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.ws.Write(ctx, websocket.MessageBinary, f.Marshal()); err != nil {
		a.t.Fatalf("agent send %s: %v", f.Type, err)
	}
}

func (a *testAgent) control(t proto.Type, v any) {
	a.t.Helper()
	f, err := proto.Control(t, v)
	if err != nil {
		a.t.Fatal(err)
	}
	a.send(f)
}

func (a *testAgent) data(stream uint32, seq uint64, payload string) {
	a.t.Helper()
	a.send(proto.Frame{Type: proto.TypeData, Stream: stream, Seq: seq, Time: time.Now(), Payload: []byte(payload)})
}

// expect returns the next frame from the hub, failing unless it has type t.
func (a *testAgent) expect(t proto.Type) proto.Frame {
	a.t.Helper()
	select {
	case f := <-a.frames:
		if f.Type != t {
			a.t.Fatalf("agent got %s frame (stream %d seq %d), want %s", f.Type, f.Stream, f.Seq, t)
		}
		return f
	case <-a.closed:
		a.t.Fatalf("agent connection closed waiting for %s: %v", t, a.err)
	case <-time.After(5 * time.Second):
		a.t.Fatalf("no %s frame within 5s", t)
	}
	return proto.Frame{}
}

// expectAck reads the next frame and checks it acknowledges stream up to seq.
func (a *testAgent) expectAck(stream uint32, seq uint64) {
	a.t.Helper()
	f := a.expect(proto.TypeAck)
	if f.Stream != stream || f.Seq != seq {
		a.t.Fatalf("ack stream %d seq %d, want stream %d seq %d", f.Stream, f.Seq, stream, seq)
	}
}

// expectNone fails if the hub sends a frame within d.
func (a *testAgent) expectNone(d time.Duration) {
	a.t.Helper()
	select {
	case f := <-a.frames:
		a.t.Fatalf("agent got unexpected %s frame (stream %d seq %d)", f.Type, f.Stream, f.Seq)
	case <-time.After(d):
	}
}

// waitClosed waits for the hub to close the connection and returns the
// close status.
func (a *testAgent) waitClosed() websocket.StatusCode {
	a.t.Helper()
	for {
		select {
		case <-a.frames:
		case <-a.closed:
			return websocket.CloseStatus(a.err)
		case <-time.After(10 * time.Second):
			a.t.Fatal("connection not closed within 10s")
		}
	}
}

// isOpen reports whether the connection is still open.
func (a *testAgent) isOpen() bool {
	select {
	case <-a.closed:
		return false
	default:
		return true
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startAsync runs session.Start in a goroutine and returns its outcome channel.
type startOutcome struct {
	pid int
	err error
}

func startAsync(ctx context.Context, s engine.AgentSession, run uint32) <-chan startOutcome {
	ch := make(chan startOutcome, 1)
	go func() {
		pid, err := s.Start(ctx, proto.Start{Run: run, Process: proto.Process{Args: []string{"true"}}})
		ch <- startOutcome{pid, err}
	}()
	return ch
}

func awaitOutcome(t *testing.T, ch <-chan startOutcome) startOutcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return within 10s")
	}
	return startOutcome{}
}

var errStoreDown = errors.New("store down")
