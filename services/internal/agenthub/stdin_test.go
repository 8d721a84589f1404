package agenthub

import (
	"context"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// With an agent that credits stdin, the hub keeps at most proto.Window
// bytes of a stdin stream uncredited: Stdin blocks until credits arrive.
// An agent without credits gets everything at once, as before.
func TestStdinWindow(t *testing.T) {
	const total = 3 * proto.Window
	cases := []struct {
		name   string
		credit bool
		// wantFirst is how many bytes arrive before any credit.
		wantFirst int
	}{
		{name: "crediting agent", credit: true, wantFirst: proto.Window},
		{name: "agent without credits", credit: false, wantFirst: total},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(map[string]string{"c1": "s1"})
			env := newTestEnv(t, b, nil)
			a, _, err := env.dial(t, "c1", "Bearer s1")
			if err != nil {
				t.Fatal(err)
			}
			a.control(proto.TypeHello, proto.Hello{ContainerID: "c1", StdinCredit: tc.credit})
			waitFor(t, "agent registered", func() bool { return env.hub.Connected("c1") })
			sess, err := env.hub.Session(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			ss := sess.(engine.StreamSession)
			sent := make(chan error, 1)
			go func() { sent <- ss.Stdin(context.Background(), 7, make([]byte, total)) }()

			got := 0
			read := func(until time.Duration) {
				deadline := time.After(until)
				for {
					select {
					case f := <-a.frames:
						if f.Type != proto.TypeStdin || f.Stream != 7 {
							t.Fatalf("got %s on stream %d", f.Type, f.Stream)
						}
						got += len(f.Payload)
					case <-deadline:
						return
					}
				}
			}
			read(300 * time.Millisecond)
			if got != tc.wantFirst {
				t.Fatalf("%d bytes arrived before any credit, want %d", got, tc.wantFirst)
			}
			for got < total {
				a.send(proto.Frame{Type: proto.TypeStdinCredit, Stream: 7, Seq: uint64(proto.Window)})
				before := got
				read(300 * time.Millisecond)
				if got-before > proto.Window {
					t.Fatalf("%d bytes after a credit of %d", got-before, proto.Window)
				}
			}
			select {
			case err := <-sent:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Stdin did not return")
			}
		})
	}
}

// A sender blocked on the window gives up when its context ends.
func TestStdinWindowHonorsContext(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s1"})
	env := newTestEnv(t, b, nil)
	a, _, err := env.dial(t, "c1", "Bearer s1")
	if err != nil {
		t.Fatal(err)
	}
	a.control(proto.TypeHello, proto.Hello{ContainerID: "c1", StdinCredit: true})
	waitFor(t, "agent registered", func() bool { return env.hub.Connected("c1") })
	sess, _ := env.hub.Session(context.Background(), "c1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := sess.(engine.StreamSession).Stdin(ctx, 7, make([]byte, 2*proto.Window)); err == nil {
		t.Fatal("Stdin past the window without credits returned nil")
	}
}
