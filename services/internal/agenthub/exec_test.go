package agenthub

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestExec(t *testing.T) {
	cases := []struct {
		name    string
		answer  func(*testAgent)
		wantPid int
		wantErr string
		events  string // the backend's events after the answer
	}{
		{"started returns the pid", func(a *testAgent) {
			a.control(proto.TypeExecStarted, proto.ExecStarted{ID: "x1", Pid: 99})
		}, 99, "", ""},
		{"start failure is stored, then returned as invalid", func(a *testAgent) {
			a.control(proto.TypeExecExit, proto.ExecExit{ID: "x1", Code: 127, Error: `exec: "nope": executable file not found in $PATH`})
		}, 0, `exec: "nope": executable file not found in $PATH`, "exec-exit x1 127"},
		{"exit without error before started returns pid 0", func(a *testAgent) {
			a.control(proto.TypeExecExit, proto.ExecExit{ID: "x1", Code: 0})
		}, 0, "", "exec-exit x1 0"},
		{"another exec's answer is not taken", func(a *testAgent) {
			a.control(proto.TypeExecStarted, proto.ExecStarted{ID: "other", Pid: 1})
			a.control(proto.TypeExecStarted, proto.ExecStarted{ID: "x1", Pid: 2})
		}, 2, "", ""},
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
			ss := sess.(engine.StreamSession)
			out := make(chan startOutcome, 1)
			go func() {
				pid, err := ss.Exec(context.Background(), proto.ExecStart{ID: "x1", Stdout: 4, Stderr: 5, Stdin: 6, Process: proto.Process{Args: []string{"ls"}}})
				out <- startOutcome{pid, err}
			}()
			var es proto.ExecStart
			if err := a.expect(proto.TypeExecStart).Decode(&es); err != nil || es.ID != "x1" || es.Stdout != 4 || es.Process.Args[0] != "ls" {
				t.Fatalf("exec start frame %+v, %v", es, err)
			}
			tc.answer(a)
			o := awaitOutcome(t, out)
			if tc.wantErr == "" {
				if o.err != nil || o.pid != tc.wantPid {
					t.Fatalf("Exec = %d, %v; want %d", o.pid, o.err, tc.wantPid)
				}
			} else if engine.KindOf(o.err) != engine.KindInvalid || o.err.Error() != tc.wantErr {
				t.Fatalf("Exec error %v, want invalid %q", o.err, tc.wantErr)
			}
			if tc.events == "" {
				return
			}
			if got := strings.Join(b.eventList(), ";"); !strings.Contains(got, tc.events) {
				t.Fatalf("events %q, want %q (stored before Exec returned)", got, tc.events)
			}
			a.expect(proto.TypeExecExitAck)
		})
	}
}

func TestExecExitIsStoredAfterItsOutput(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)
	a.data(4, 1, "exec out\n")
	a.data(5, 1, "exec err\n")
	a.control(proto.TypeExecExit, proto.ExecExit{ID: "x1", Code: 3})
	a.expectAck(4, 1)
	a.expectAck(5, 1)
	var ack proto.ExecExitAck
	if err := a.expect(proto.TypeExecExitAck).Decode(&ack); err != nil || ack.ID != "x1" {
		t.Fatalf("exec exit ack %+v %v", ack, err)
	}
	if got := b.logText("c1"); got != "4:exec out\n,5:exec err\n" {
		t.Fatalf("stored output %q", got)
	}
	ev := b.eventList()
	if len(ev) == 0 || ev[len(ev)-1] != "exec-exit x1 3" {
		t.Fatalf("events %v: the exec's exit must come after its output", ev)
	}
}

func TestStdinResizeFrames(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	ss := sess.(engine.StreamSession)
	big := bytes.Repeat([]byte("x"), proto.MaxPayload*2+5)
	if err := ss.Stdin(context.Background(), 6, big); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, want := range []int{proto.MaxPayload, proto.MaxPayload, 5} {
		f := a.expect(proto.TypeStdin)
		if f.Stream != 6 || len(f.Payload) != want {
			t.Fatalf("stdin frame stream %d len %d, want 6 and %d", f.Stream, len(f.Payload), want)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("stdin bytes changed on the way")
	}
	if err := ss.CloseStdin(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	if f := a.expect(proto.TypeStdinClose); f.Stream != 6 {
		t.Fatalf("stdin close on stream %d", f.Stream)
	}
	if err := ss.Resize(context.Background(), proto.Resize{Exec: "x1", Rows: 33, Cols: 101}); err != nil {
		t.Fatal(err)
	}
	var r proto.Resize
	if err := a.expect(proto.TypeResize).Decode(&r); err != nil || r != (proto.Resize{Exec: "x1", Rows: 33, Cols: 101}) {
		t.Fatalf("resize %+v %v", r, err)
	}
}

func TestExecSurvivesReconnect(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
	a := env.connect(t, "c1", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	ss := sess.(engine.StreamSession)
	out := make(chan startOutcome, 1)
	go func() {
		pid, err := ss.Exec(context.Background(), proto.ExecStart{ID: "x1", Stdout: 4, Process: proto.Process{Args: []string{"true"}}})
		out <- startOutcome{pid, err}
	}()
	a.expect(proto.TypeExecStart)
	_ = a.ws.CloseNow()
	waitFor(t, "old connection gone", func() bool { return !env.hub.Connected("c1") })

	a = env.connect(t, "c1", 0)
	a.control(proto.TypeExecStarted, proto.ExecStarted{ID: "x1", Pid: 42})
	if o := awaitOutcome(t, out); o.err != nil || o.pid != 42 {
		t.Fatalf("Exec = %d, %v; want 42 from the new connection", o.pid, o.err)
	}
}

func TestExecStreamDuplicatesDropped(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	old := env.connect(t, "c1", 0)
	old.data(4, 1, "a")
	old.expectAck(4, 1)
	old.data(4, 2, "b")
	old.expectAck(4, 2)

	fresh := env.connect(t, "c1", 0)
	old.waitClosed()
	fresh.expectAck(4, 2) // what is stored, told to the new connection

	fresh.data(4, 1, "a")
	fresh.data(4, 2, "b")
	fresh.data(4, 3, "c")
	fresh.data(5, 1, "e")
	fresh.control(proto.TypeExecExit, proto.ExecExit{ID: "x1", Code: 1})
	fresh.until(proto.TypeExecExitAck)

	if got, want := b.logText("c1"), "4:a,4:b,4:c,5:e"; got != want {
		t.Fatalf("stored %q, want %q (re-sent exec output stored once)", got, want)
	}
	acked, _ := b.AgentAcked(context.Background(), "c1")
	if acked[4] != 3 || acked[5] != 1 {
		t.Fatalf("stored acked %v, want 4:3 5:1", acked)
	}
	ev := b.eventList()
	if ev[len(ev)-1] != "exec-exit x1 1" {
		t.Fatalf("events %v: the exec's exit must come after its output", ev)
	}
}
