package agenthub

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestRefusedDialLeavesLiveSession(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s3cret", "c2": "other"}), nil)
	live := env.connect(t, "c1", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, id, auth string
		status         int
	}{
		{"missing container header is 401", "", "Bearer s3cret", http.StatusUnauthorized},
		{"missing authorization is 401", "c1", "", http.StatusUnauthorized},
		{"wrong secret is 401", "c1", "Bearer guess", http.StatusUnauthorized},
		{"other container's secret is 401", "c1", "Bearer other", http.StatusUnauthorized},
		{"basic scheme is 401", "c1", "Basic s3cret", http.StatusUnauthorized},
		{"empty bearer is 401", "c1", "Bearer ", http.StatusUnauthorized},
		{"unknown container is 401", "nope", "Bearer s3cret", http.StatusUnauthorized},
		{"unavailable backend is 503", "flaky", "Bearer s3cret", http.StatusServiceUnavailable},
		{"ended instance is refused for good", "ended", "Bearer s3cret", proto.StatusInstanceEnded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := env.dial(t, tc.id, tc.auth)
			if err == nil {
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("response %v, want status %d", resp, tc.status)
			}
			var body struct{ Message string }
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil || body.Message == "" {
				t.Fatalf("body %q is not a docker error: %v", b, err)
			}
			if !env.hub.Connected("c1") || !live.isOpen() {
				t.Fatal("refused dial disturbed the live session")
			}
		})
	}

	t.Run("live session still starts", func(t *testing.T) {
		out := startAsync(context.Background(), sess, 1)
		f := live.expect(proto.TypeStart)
		var st proto.Start
		if err := f.Decode(&st); err != nil || st.Run != 1 || st.Process.Args[0] != "true" {
			t.Fatalf("start frame %+v: %v", st, err)
		}
		live.control(proto.TypeStarted, proto.Started{Run: 1, Pid: 42})
		if o := awaitOutcome(t, out); o.err != nil || o.pid != 42 {
			t.Fatalf("Start = %d, %v; want 42", o.pid, o.err)
		}
	})
}

func TestHelloChecked(t *testing.T) {
	cases := []struct {
		name  string
		hello func(*testAgent)
	}{
		{"hello of another container is refused", func(a *testAgent) {
			a.control(proto.TypeHello, proto.Hello{ContainerID: "c2"})
		}},
		{"non-hello first frame is refused", func(a *testAgent) {
			a.data(proto.StreamStdout, 1, "x")
		}},
		{"garbage first message is refused", func(a *testAgent) {
			_ = a.ws.Write(context.Background(), websocket.MessageBinary, []byte{1, 2})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
			a, _, err := env.dial(t, "c1", "Bearer s")
			if err != nil {
				t.Fatal(err)
			}
			tc.hello(a)
			if code := a.waitClosed(); code != websocket.StatusPolicyViolation {
				t.Fatalf("close status %v, want policy violation", code)
			}
			if env.hub.Connected("c1") {
				t.Fatal("connection registered without a valid hello")
			}
		})
	}
}

func TestSessionWaitsForAgent(t *testing.T) {
	cases := []struct {
		name    string
		connect bool
		wantErr error
	}{
		{"late agent is returned", true, nil},
		{"absent agent hits the deadline", false, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			type result struct {
				s   engine.AgentSession
				err error
			}
			done := make(chan result, 1)
			go func() {
				s, err := env.hub.Session(ctx, "c1")
				done <- result{s, err}
			}()
			time.Sleep(100 * time.Millisecond)
			select {
			case r := <-done:
				t.Fatalf("Session returned before the agent connected: %v", r.err)
			default:
			}
			var a *testAgent
			if tc.connect {
				a = env.connect(t, "c1", 0)
			}
			r := <-done
			if !errors.Is(r.err, tc.wantErr) {
				t.Fatalf("Session error %v, want %v", r.err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if err := r.s.Signal(context.Background(), 10); err != nil {
				t.Fatal(err)
			}
			var sig proto.Signal
			if err := a.expect(proto.TypeSignal).Decode(&sig); err != nil || sig.Signal != 10 {
				t.Fatalf("signal frame %+v: %v", sig, err)
			}
			if err := r.s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			a.expect(proto.TypeShutdown)
		})
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s", "c2": "t"})
	env := newTestEnv(t, b, nil)
	a1 := env.connect(t, "c1", 0)
	a2 := env.connect(t, "c2", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := env.hub.Session(context.Background(), "c3")
		waiting <- err
	}()

	if err := env.hub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*testAgent{a1, a2} {
		if code := a.waitClosed(); code != websocket.StatusGoingAway {
			t.Fatalf("close status %v, want going away", code)
		}
		if a.err == nil || websocket.CloseStatus(a.err) != websocket.StatusGoingAway {
			t.Fatalf("close error %v", a.err)
		}
	}
	var ce websocket.CloseError
	if errors.As(a1.err, &ce) && ce.Reason != "reconnect" {
		t.Fatalf("close reason %q, want reconnect", ce.Reason)
	}
	if err := <-waiting; engine.KindOf(err) != engine.KindUnavailable {
		t.Fatalf("waiting Session error %v, want unavailable", err)
	}
	if err := sess.Signal(context.Background(), 9); engine.KindOf(err) != engine.KindUnavailable {
		t.Fatalf("Signal after close: %v, want unavailable", err)
	}
	_, resp, err := env.dial(t, "c1", "Bearer s")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after close: %v %v, want 503", resp, err)
	}
	for range 2 {
		select {
		case <-b.gone:
		case <-time.After(time.Second):
			t.Fatal("AgentGone not called for every session")
		}
	}
}

func TestUnansweredPingClosesSession(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, func(h *Hub) { h.pingInterval = 100 * time.Millisecond })
	hdr := http.Header{proto.HeaderContainer: {"c1"}, proto.HeaderAuthorization: {"Bearer s"}}
	// This agent never reads, so it never answers a ping.
	ws, _, err := websocket.Dial(context.Background(), env.url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	f, _ := proto.Control(proto.TypeHello, proto.Hello{ContainerID: "c1"})
	if err := ws.Write(context.Background(), websocket.MessageBinary, f.Marshal()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent registered", func() bool { return env.hub.Connected("c1") })
	waitFor(t, "silent agent dropped", func() bool { return !env.hub.Connected("c1") })
	select {
	case id := <-b.gone:
		if id != "c1" {
			t.Fatalf("AgentGone(%q)", id)
		}
	case <-time.After(time.Second):
		t.Fatal("AgentGone not called")
	}
}

func TestNoSessionErrors(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), nil)
	a := env.connect(t, "c1", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	_ = a.ws.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "session removed", func() bool { return !env.hub.Connected("c1") })

	cases := []struct {
		name string
		call func() error
	}{
		{"signal is unavailable", func() error { return sess.Signal(context.Background(), 15) }},
		{"shutdown is unavailable", func() error { return sess.Shutdown(context.Background()) }},
		{"start is unavailable", func() error {
			_, err := sess.Start(context.Background(), proto.Start{Run: 1, Process: proto.Process{Args: []string{"true"}}})
			return err
		}},
		{"exec is unavailable", func() error {
			_, err := sess.(engine.StreamSession).Exec(context.Background(), proto.ExecStart{ID: "x1", Process: proto.Process{Args: []string{"true"}}})
			return err
		}},
		{"stdin is unavailable", func() error {
			return sess.(engine.StreamSession).Stdin(context.Background(), proto.StreamStdin, []byte("x"))
		}},
		{"stdin close is unavailable", func() error {
			return sess.(engine.StreamSession).CloseStdin(context.Background(), proto.StreamStdin)
		}},
		{"resize is unavailable", func() error {
			return sess.(engine.StreamSession).Resize(context.Background(), proto.Resize{Rows: 1, Cols: 1})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); engine.KindOf(err) != engine.KindUnavailable {
				t.Fatalf("error %v, want KindUnavailable", err)
			}
		})
	}
}

func TestCloseCutsOffSilentAgent(t *testing.T) {
	env := newTestEnv(t, newFakeBackend(map[string]string{"c1": "s"}), func(h *Hub) {
		h.closeTimeout = 200 * time.Millisecond
	})
	hdr := http.Header{proto.HeaderContainer: {"c1"}, proto.HeaderAuthorization: {"Bearer s"}}
	// This agent never reads, so it never answers the close handshake.
	ws, _, err := websocket.Dial(context.Background(), env.url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	f, _ := proto.Control(proto.TypeHello, proto.Hello{ContainerID: "c1"})
	if err := ws.Write(context.Background(), websocket.MessageBinary, f.Marshal()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent registered", func() bool { return env.hub.Connected("c1") })

	start := time.Now()
	if err := env.hub.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a silent agent", d)
	}
	if env.hub.Connected("c1") {
		t.Fatal("session survived Close")
	}
}
