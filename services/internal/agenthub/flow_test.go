package agenthub

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestReconnectReplacesAndDropsDuplicates(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	old := env.connect(t, "c1", 0)
	for seq := uint64(1); seq <= 3; seq++ {
		old.data(proto.StreamStdout, seq, fmt.Sprintf("o%d", seq))
		old.expectAck(proto.StreamStdout, seq)
	}
	old.data(proto.StreamStderr, 1, "e1")
	old.expectAck(proto.StreamStderr, 1)

	// The agent reconnects (its old connection looks dead to it).
	fresh := env.connect(t, "c1", 0)
	old.waitClosed() // fails the test if the old connection stays open
	select {
	case <-b.gone:
	case <-time.After(time.Second):
		t.Fatal("AgentGone not called for the replaced connection")
	}
	// The hub tells the new connection what is stored.
	fresh.expectAck(proto.StreamStdout, 3)
	fresh.expectAck(proto.StreamStderr, 1)

	// It re-sends what it had not seen acked, then continues.
	fresh.data(proto.StreamStdout, 2, "o2")
	fresh.data(proto.StreamStdout, 3, "o3")
	fresh.data(proto.StreamStderr, 1, "e1")
	fresh.data(proto.StreamStdout, 4, "o4")
	fresh.data(proto.StreamStderr, 2, "e2")
	fresh.until(proto.TypeAck) // acks follow the stores
	waitFor(t, "new output stored", func() bool {
		acked, _ := b.AgentAcked(context.Background(), "c1")
		return acked[proto.StreamStdout] == 4 && acked[proto.StreamStderr] == 2
	})

	if got, want := b.logText("c1"), "1:o1,1:o2,1:o3,2:e1,1:o4,2:e2"; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	acked, _ := b.AgentAcked(context.Background(), "c1")
	if acked[proto.StreamStdout] != 4 || acked[proto.StreamStderr] != 2 {
		t.Fatalf("stored acked %v", acked)
	}
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Signal(context.Background(), 2); err != nil {
		t.Fatalf("session through the new connection: %v", err)
	}
	fresh.until(proto.TypeSignal)
}

// until reads frames until one of type t, skipping others (acks).
func (a *testAgent) until(t proto.Type) proto.Frame {
	a.t.Helper()
	for {
		select {
		case f := <-a.frames:
			if f.Type == t {
				return f
			}
		case <-a.closed:
			a.t.Fatalf("connection closed waiting for %s: %v", t, a.err)
		case <-time.After(5 * time.Second):
			a.t.Fatalf("no %s frame within 5s", t)
		}
	}
}

func TestAckOnlyAfterStore(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	b.gate = make(chan struct{})
	b.entered = make(chan struct{}, 16)
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)

	a.data(proto.StreamStdout, 1, "first")
	<-b.entered
	a.expectNone(200 * time.Millisecond)

	// More output arrives while the store is busy; it queues up.
	for seq := uint64(2); seq <= 11; seq++ {
		a.data(proto.StreamStdout, seq, fmt.Sprintf("m%d", seq))
	}
	a.data(proto.StreamStderr, 1, "err")
	time.Sleep(100 * time.Millisecond)
	a.expectNone(50 * time.Millisecond)

	b.gate <- struct{}{}
	a.expectAck(proto.StreamStdout, 1)
	<-b.entered
	a.expectNone(100 * time.Millisecond)
	b.gate <- struct{}{}
	a.expectAck(proto.StreamStdout, 11)
	a.expectAck(proto.StreamStderr, 1)

	b.mu.Lock()
	batches := slices.Clone(b.batches)
	b.mu.Unlock()
	if !slices.Equal(batches, []int{1, 11}) {
		t.Fatalf("StoreOutput batches %v, want [1 11]", batches)
	}
}

func TestFailedStoreIsNotAcked(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	b.failOutput = errStoreDown
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)
	a.data(proto.StreamStdout, 1, "lost?")
	if code := a.waitClosed(); code != websocket.StatusInternalError {
		t.Fatalf("close status %v, want internal error", code)
	}
	waitFor(t, "session removed", func() bool { return !env.hub.Connected("c1") })

	// The agent reconnects and re-sends; now it is stored once and acked.
	a = env.connect(t, "c1", 0)
	a.data(proto.StreamStdout, 1, "lost?")
	a.expectAck(proto.StreamStdout, 1)
	if got := b.logText("c1"); got != "1:lost?" {
		t.Fatalf("stored %q", got)
	}
}

func TestExitStoredAfterOutput(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)

	a.data(proto.StreamStdout, 1, "a")
	a.data(proto.StreamStderr, 1, "b")
	a.data(proto.StreamStdout, 2, "c")
	a.control(proto.TypeExit, proto.Exit{Run: 1, Code: 3})
	// Re-sent exit (the agent had not seen the ack yet) is stored again
	// (idempotent on the engine side) and acked again.
	a.control(proto.TypeExit, proto.Exit{Run: 1, Code: 3})

	var exitAcks int
	for exitAcks < 2 {
		select {
		case f := <-a.frames:
			if f.Type == proto.TypeExitAck {
				var ack proto.ExitAck
				if err := f.Decode(&ack); err != nil || ack.Run != 1 {
					t.Fatalf("exit ack %+v: %v", ack, err)
				}
				exitAcks++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no exit ack")
		}
	}
	want := []string{"out 1 a", "out 2 b", "out 1 c", "exit 1", "exit 1"}
	if got := b.eventList(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestStart(t *testing.T) {
	cases := []struct {
		name    string
		answer  func(*testAgent)
		wantPid int
		wantErr string
	}{
		{"started returns the pid", func(a *testAgent) {
			a.control(proto.TypeStarted, proto.Started{Run: 1, Pid: 4711})
		}, 4711, ""},
		{"start failure returns invalid with the message", func(a *testAgent) {
			a.control(proto.TypeExit, proto.Exit{Run: 1, Code: 127, Error: `exec: "nope": executable file not found in $PATH`})
		}, 0, `exec: "nope": executable file not found in $PATH`},
		{"answer for another run is not taken", func(a *testAgent) {
			a.control(proto.TypeStarted, proto.Started{Run: 7, Pid: 1})
			a.control(proto.TypeStarted, proto.Started{Run: 1, Pid: 2})
		}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(map[string]string{"c1": "s"})
			env := newTestEnv(t, b, nil)
			a := env.connect(t, "c1", 0)
			sess, err := env.hub.Session(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			out := startAsync(context.Background(), sess, 1)
			a.expect(proto.TypeStart)
			tc.answer(a)
			o := awaitOutcome(t, out)
			if tc.wantErr == "" {
				if o.err != nil || o.pid != tc.wantPid {
					t.Fatalf("Start = %d, %v; want %d", o.pid, o.err, tc.wantPid)
				}
				return
			}
			if engine.KindOf(o.err) != engine.KindInvalid || o.err.Error() != tc.wantErr {
				t.Fatalf("Start error %v (kind %v), want invalid %q", o.err, engine.KindOf(o.err), tc.wantErr)
			}
			b.mu.Lock()
			stored := len(b.exits["c1"])
			b.mu.Unlock()
			if stored != 1 {
				t.Fatal("Start returned before the exit was stored")
			}
			a.expect(proto.TypeExitAck)
		})
	}
}

func TestStartSurvivesReconnect(t *testing.T) {
	cases := []struct {
		name    string
		answer  func(*testAgent)
		running uint32
		wantPid int
	}{
		{"started on the new connection", func(a *testAgent) {
			a.control(proto.TypeStarted, proto.Started{Run: 1, Pid: 99})
		}, 0, 99},
		{"hello reporting the run as running", func(*testAgent) {}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
			a := env.connect(t, "c1", 0)
			sess, err := env.hub.Session(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			out := startAsync(context.Background(), sess, 1)
			a.expect(proto.TypeStart)
			_ = a.ws.CloseNow()
			waitFor(t, "old connection gone", func() bool { return !env.hub.Connected("c1") })

			a = env.connect(t, "c1", tc.running)
			tc.answer(a)
			if o := awaitOutcome(t, out); o.err != nil || o.pid != tc.wantPid {
				t.Fatalf("Start = %d, %v; want %d", o.pid, o.err, tc.wantPid)
			}
		})
	}
}

func TestStartFailsWhenAgentStaysAway(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), func(h *Hub) {
		h.reconnectGrace = 200 * time.Millisecond
	})
	a := env.connect(t, "c1", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	out := startAsync(context.Background(), sess, 1)
	a.expect(proto.TypeStart)
	_ = a.ws.CloseNow()
	o := awaitOutcome(t, out)
	if engine.KindOf(o.err) != engine.KindUnavailable {
		t.Fatalf("Start error %v, want unavailable", o.err)
	}
}
