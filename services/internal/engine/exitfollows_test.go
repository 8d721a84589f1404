package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// sharedStore is the embedded store seen as one other control planes
// share (a ContainerWatcher, as Firestore), counting container writes.
type sharedStore struct {
	engine.Store
	updates atomic.Int64
	// latency delays each container write, as Firestore's round trips.
	latency time.Duration
	// Once armed, the first write entered closes entered.
	armed   atomic.Bool
	entered chan struct{}
}

func (s *sharedStore) enter() {
	if s.armed.CompareAndSwap(true, false) {
		close(s.entered)
	}
	time.Sleep(s.latency)
}

func (s *sharedStore) UpdateContainer(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, error) {
	s.updates.Add(1)
	s.enter()
	return s.Store.UpdateContainer(ctx, ns, id, fn)
}

func (s *sharedStore) AppendLogs(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64) ([]engine.LogEntry, error) {
	s.enter()
	return s.Store.AppendLogs(ctx, ns, id, entries, acked)
}

func (s *sharedStore) WatchContainer(ctx context.Context, _, _ string, _ func()) error {
	<-ctx.Done()
	return nil
}

// exitingAgents' sessions start the process at once and, with exits,
// report its exit right behind the start's reply: the hub has begun to
// store it (or, with output, the line of output the exit follows, as the
// hub reads an agent's frames in order) when the reply reaches Start.
type exitingAgents struct {
	backend func() *engine.AgentBackend
	store   *sharedStore
	exits   bool
	output  bool
}

func (a *exitingAgents) Session(_ context.Context, aid string) (engine.AgentSession, error) {
	return &exitingSession{a: a, aid: aid}, nil
}
func (a *exitingAgents) Connected(string) bool { return false }

type exitingSession struct {
	a   *exitingAgents
	aid string
}

func (s *exitingSession) Start(_ context.Context, st proto.Start) (int, error) {
	if s.a.exits {
		s.a.store.entered = make(chan struct{})
		s.a.store.armed.Store(true)
		go func() {
			if s.a.output {
				_ = s.a.backend().StoreOutput(context.Background(), s.aid, []engine.LogEntry{{Stream: 1, Time: time.Now(), Data: []byte("hi\n")}}, nil)
			}
			_ = s.a.backend().StoreExit(context.Background(), s.aid, proto.Exit{Run: st.Run, Code: 3})
		}()
		<-s.a.store.entered
	}
	return 7, nil
}
func (s *exitingSession) Signal(context.Context, int) error    { return nil }
func (s *exitingSession) SignalAll(context.Context, int) error { return nil }
func (s *exitingSession) Shutdown(context.Context) error       { return nil }

// A start on a shared store whose process exits at once is written once
// with its exit, not first as running: a write and a round trip less on
// docker run --rm's path. One that keeps running is recorded running
// before the start answers, as docker's.
func TestStartLeavesTheRunToAnExitThatFollows(t *testing.T) {
	for _, tt := range []struct {
		name       string
		exits      bool
		output     bool
		latency    time.Duration
		wantStatus string
		wantCode   int
	}{
		{"exits at once, each write a round trip", true, false, 15 * time.Millisecond, engine.StatusExited, 3},
		{"writes a line and exits, each write a round trip", true, true, 15 * time.Millisecond, engine.StatusExited, 3},
		{"keeps running", false, false, 0, engine.StatusRunning, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := boltWithBusybox(t, "true")
			st := &sharedStore{Store: b, latency: tt.latency}
			agents := &exitingAgents{store: st, exits: tt.exits, output: tt.output}
			e := newWithFleet(t, engine.Config{Store: st, Images: fakeImages{}, Functions: &fakeFunctions{}, Agents: agents, BootTimeout: time.Second, CallbackURL: "ws://hub"})
			agents.backend = e.AgentBackend
			if _, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "quick", Config: &container.Config{Image: "busybox"}}); err != nil {
				t.Fatal(err)
			}
			before := st.updates.Load()
			if err := e.Start(ctx, "default", "quick"); err != nil {
				t.Fatal(err)
			}
			c, err := e.Container(ctx, "default", "quick")
			if err != nil {
				t.Fatal(err)
			}
			if c.State.Status != tt.wantStatus || c.State.ExitCode != tt.wantCode {
				t.Errorf("after start: %s, exit code %d; want %s, %d", c.State.Status, c.State.ExitCode, tt.wantStatus, tt.wantCode)
			}
			// The claim, then the exit or the running record: two writes.
			if n := st.updates.Load() - before; n != 2 {
				t.Errorf("%d container writes from the start, want 2 (the claim, then the exit or the running record)", n)
			}
		})
	}
}
