package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

func newTestSession(h *testHub, handler Handler, secret string) *Session {
	return New(Config{
		CallbackURL:  h.url(),
		ContainerID:  "c1",
		Secret:       secret,
		Handler:      handler,
		ExitResend:   100 * time.Millisecond,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   50 * time.Millisecond,
		GiveUpAfter:  5 * time.Second,
		PingInterval: time.Second,
		PingTimeout:  time.Second,
	})
}

func TestHelloAndAuthHeaders(t *testing.T) {
	h := newTestHub(t, "s3cret")
	s := newTestSession(h, newRecorder(), "s3cret")
	runSession(t, s)
	hc := h.next(t)
	if hc.hello.ContainerID != "c1" || hc.hello.Running != 0 || len(hc.hello.Acked) != 0 {
		t.Fatalf("hello %+v", hc.hello)
	}
	if got := hc.header.Get(proto.HeaderContainer); got != "c1" {
		t.Fatalf("container header %q", got)
	}
	s.Started(2, 99)
	if f := hc.frame(t); f.Type != proto.TypeStarted {
		t.Fatalf("got %v, want started", f.Type)
	}
	close(hc.done)
	if hc2 := h.next(t); hc2.hello.Running != 2 {
		t.Fatalf("hello after reconnect %+v, want running 2", hc2.hello)
	}
}

func TestOutputAndExit(t *testing.T) {
	h := newTestHub(t, "k")
	s := newTestSession(h, newRecorder(), "k")
	runSession(t, s)
	hc := h.next(t)

	now := time.Now()
	s.Started(1, 42)
	s.Data(proto.StreamStdout, []byte("out"), now)
	s.Data(proto.StreamStderr, []byte("err"), now)
	s.Data(proto.StreamStdout, bytes.Repeat([]byte("x"), proto.MaxPayload+1), now)
	exited := make(chan error, 1)
	go func() { exited <- s.Exit(context.Background(), proto.Exit{Run: 1, Code: 3}) }()

	want := []struct {
		typ    proto.Type
		stream uint32
		seq    uint64
		size   int
	}{
		{proto.TypeStarted, 0, 0, -1},
		{proto.TypeData, 1, 1, 3},
		{proto.TypeData, 2, 1, 3},
		{proto.TypeData, 1, 2, proto.MaxPayload},
		{proto.TypeData, 1, 3, 1},
		{proto.TypeExit, 0, 0, -1},
	}
	for i, w := range want {
		f := hc.frame(t)
		if f.Type != w.typ || f.Stream != w.stream || f.Seq != w.seq || (w.size >= 0 && len(f.Payload) != w.size) {
			t.Fatalf("frame %d: %v stream %d seq %d len %d; want %+v", i, f.Type, f.Stream, f.Seq, len(f.Payload), w)
		}
		if f.Type == proto.TypeData && f.Time.UnixNano() != now.UnixNano() {
			t.Fatalf("frame %d time %v, want %v", i, f.Time, now)
		}
	}
	// The Exit is re-sent until acknowledged.
	if f := hc.frame(t); f.Type != proto.TypeExit {
		t.Fatalf("got %v, want a re-sent exit", f.Type)
	}
	select {
	case err := <-exited:
		t.Fatalf("Exit returned %v before the ack", err)
	default:
	}
	hc.control(t, proto.TypeExitAck, proto.ExitAck{Run: 1})
	select {
	case err := <-exited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exit did not return after the ack")
	}
}

func TestWindow(t *testing.T) {
	h := newTestHub(t, "k")
	s := newTestSession(h, newRecorder(), "k")
	runSession(t, s)
	hc := h.next(t)

	chunk := bytes.Repeat([]byte("y"), proto.MaxPayload)
	frames := proto.Window / proto.MaxPayload
	for i := 0; i < frames; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.WaitWindow(ctx, proto.StreamStdout); err != nil {
			t.Fatalf("window closed after %d frames: %v", i, err)
		}
		cancel()
		s.Data(proto.StreamStdout, append([]byte(nil), chunk...), time.Now())
	}
	if got := s.Unacked(proto.StreamStdout); got != proto.Window {
		t.Fatalf("unacked %d, want %d", got, proto.Window)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.WaitWindow(ctx, proto.StreamStdout); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("full window: WaitWindow = %v, want it to block", err)
	}
	// The other stream has its own window.
	if err := s.WaitWindow(context.Background(), proto.StreamStderr); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := 0; i < frames; i++ {
		last = hc.frame(t).Seq
	}
	waited := make(chan error, 1)
	go func() { waited <- s.WaitWindow(context.Background(), proto.StreamStdout) }()
	hc.send(t, proto.Frame{Type: proto.TypeAck, Stream: proto.StreamStdout, Seq: 1})
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ack did not open the window")
	}
	hc.send(t, proto.Frame{Type: proto.TypeAck, Stream: proto.StreamStdout, Seq: last})
	deadline := time.Now().Add(5 * time.Second)
	for s.Unacked(proto.StreamStdout) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("unacked %d after acking all", s.Unacked(proto.StreamStdout))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReconnectResendsUnacked(t *testing.T) {
	h := newTestHub(t, "k")
	s := newTestSession(h, newRecorder(), "k")
	runSession(t, s)
	hc := h.next(t)

	s.Started(1, 7)
	for i := 1; i <= 5; i++ {
		s.Data(proto.StreamStdout, []byte(fmt.Sprintf("o%d", i)), time.Now())
		s.Data(proto.StreamStderr, []byte(fmt.Sprintf("e%d", i)), time.Now())
	}
	go s.Exit(context.Background(), proto.Exit{Run: 1, Code: 0})
	for i := 0; i < 12; i++ { // started, 10 data, exit
		hc.frame(t)
	}
	hc.send(t, proto.Frame{Type: proto.TypeAck, Stream: proto.StreamStdout, Seq: 3})
	hc.send(t, proto.Frame{Type: proto.TypeAck, Stream: proto.StreamStderr, Seq: 1})
	deadline := time.Now().Add(5 * time.Second)
	for s.Unacked(proto.StreamStdout) != 4 || s.Unacked(proto.StreamStderr) != 8 {
		if time.Now().After(deadline) {
			t.Fatal("acks not applied")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hc.done) // the hub drops the connection

	hc2 := h.next(t)
	if hc2.hello.Running != 0 || hc2.hello.Acked[proto.StreamStdout] != 3 || hc2.hello.Acked[proto.StreamStderr] != 1 {
		t.Fatalf("hello after reconnect %+v", hc2.hello)
	}
	// Unacked frames come again in their original order, then the Exit.
	want := []string{"e2", "e3", "o4", "e4", "o5", "e5"}
	for i, w := range want {
		f := hc2.frame(t)
		if f.Type != proto.TypeData || string(f.Payload) != w {
			t.Fatalf("resent %d: %v %q, want data %q", i, f.Type, f.Payload, w)
		}
	}
	if f := hc2.frame(t); f.Type != proto.TypeExit {
		t.Fatalf("got %v, want exit after the data", f.Type)
	}
}

func TestCommandsReachHandler(t *testing.T) {
	h := newTestHub(t, "k")
	rec := newRecorder()
	s := newTestSession(h, rec, "k")
	runSession(t, s)
	hc := h.next(t)

	hc.control(t, proto.TypeStart, proto.Start{Run: 1, Process: proto.Process{Args: []string{"sh", "-c", "x"}}})
	hc.control(t, proto.TypeSignal, proto.Signal{Signal: 2})
	hc.control(t, proto.TypeSignal, proto.Signal{Signal: 19, All: true})
	hc.send(t, proto.Frame{Type: proto.TypeStdin, Payload: []byte("input")})
	hc.send(t, proto.Frame{Type: proto.TypeStdinClose})
	hc.send(t, proto.Frame{Type: proto.TypeShutdown})
	want := []string{"start sh -c x", "signal 2", "signal 19 all", "stdin input", "stdin-close", "shutdown"}
	for _, w := range want {
		select {
		case got := <-rec.got:
			if got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler did not get %q", w)
		}
	}
}

func TestRunEnds(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		closed  bool
		wantErr error
	}{
		{"wrong secret gives up as unreachable", "wrong", false, ErrUnreachable},
		{"no hub gives up as unreachable", "k", true, ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, "k")
			if tt.closed {
				h.srv.Close()
			}
			s := newTestSession(h, newRecorder(), tt.secret)
			s.cfg.GiveUpAfter = 300 * time.Millisecond
			start := time.Now()
			r := runSession(t, s)
			err := r.wait(t, 10*time.Second)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("gave up after %s, before GiveUpAfter", d)
			}
			if !tt.closed && h.refused < 2 {
				t.Fatalf("refused %d dials, want repeated attempts", h.refused)
			}
		})
	}
}

// A hub that says the control plane has ended the instance ends Run at
// its first answer: the agent does not dial on for GiveUpAfter.
func TestRunEndsWhenTheInstanceIsEnded(t *testing.T) {
	h := newTestHub(t, "k")
	h.ended = true
	s := newTestSession(h, newRecorder(), "k")
	s.cfg.GiveUpAfter = time.Hour
	r := runSession(t, s)
	if err := r.wait(t, 10*time.Second); !errors.Is(err, ErrInstanceEnded) {
		t.Fatalf("Run = %v, want %v", err, ErrInstanceEnded)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused != 1 {
		t.Fatalf("dialed %d times, want 1", h.refused)
	}
}

func TestCancelClosesConnection(t *testing.T) {
	h := newTestHub(t, "k")
	s := newTestSession(h, newRecorder(), "k")
	r := runSession(t, s)
	hc := h.next(t)
	r.cancel()
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	select {
	case _, ok := <-hc.frames:
		if ok {
			t.Fatal("unexpected frame")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hub connection still open")
	}
}

func TestDeadPeerIsDetectedByPing(t *testing.T) {
	h := newTestHub(t, "k")
	h.noRead = true // never reads, so never answers a ping
	s := newTestSession(h, newRecorder(), "k")
	s.cfg.PingInterval = 50 * time.Millisecond
	s.cfg.PingTimeout = 100 * time.Millisecond
	runSession(t, s)
	h.next(t)
	h.mu.Lock()
	h.noRead = false
	h.mu.Unlock()
	hc := h.next(t) // the agent gave up on the silent connection and redialed
	if hc.hello.ContainerID != "c1" {
		t.Fatalf("hello %+v", hc.hello)
	}
}
