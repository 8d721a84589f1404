package firestore

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

// TestContainerLifeCost counts the document reads and writes of a short
// container's life as the engine drives the store for
// `docker run --rm busybox echo hi`: create, start, the output with the
// agent's ack, exit, removal. The create and the removal each write the
// container's document alone (it is its name's reservation), and every
// change after the create is made on the state the store knows (see
// known), so only the explicit reads read: 6 writes and 2 reads.
func TestContainerLifeCost(t *testing.T) {
	s, _ := openFresh(t)
	const id, ns = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "default"
	steps := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"create", func(ctx context.Context) error {
			return s.CreateContainer(ctx, storetest.NewContainer(ns, id, "happy_turing"))
		}},
		{"get by id", func(ctx context.Context) error {
			_, err := s.GetContainer(ctx, ns, id)
			return err
		}},
		{"update to running", func(ctx context.Context) error {
			_, err := s.UpdateContainer(ctx, ns, id, func(c *engine.Container) error {
				c.Run++
				c.State = engine.State{Status: engine.StatusRunning, Pid: 1, StartedAt: time.Now().UTC()}
				return nil
			})
			return err
		}},
		{"append 2 entries with acks", func(ctx context.Context) error {
			_, err := s.AppendLogs(ctx, ns, id, []engine.LogEntry{
				{Stream: engine.Stdout, Time: time.Now(), Data: []byte("hi\n")},
				{Stream: engine.Stderr, Time: time.Now(), Data: []byte("warn\n")},
			}, map[uint32]uint64{1: 1, 2: 1})
			return err
		}},
		{"append 1 more entry", func(ctx context.Context) error {
			_, err := s.AppendLogs(ctx, ns, id, []engine.LogEntry{{Stream: engine.Stdout, Time: time.Now(), Data: []byte("bye\n")}}, map[uint32]uint64{1: 2})
			return err
		}},
		{"read logs", func(ctx context.Context) error {
			_, err := s.ReadLogs(ctx, ns, id, 0, 0)
			return err
		}},
		{"update to exited", func(ctx context.Context) error {
			_, err := s.UpdateContainer(ctx, ns, id, func(c *engine.Container) error {
				c.ExitedRun = c.Run
				c.State = engine.State{Status: engine.StatusExited, FinishedAt: time.Now().UTC()}
				return nil
			})
			return err
		}},
		{"delete", func(ctx context.Context) error { return s.DeleteContainer(ctx, ns, id) }},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-28s %5s %6s\n", "step", "reads", "writes")
	for _, st := range steps {
		r0, w0 := s.Stats()
		if err := st.do(t.Context()); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		r1, w1 := s.Stats()
		fmt.Fprintf(&report, "%-28s %5d %6d\n", st.name, r1-r0, w1-w0)
	}
	reads, writes := s.Stats()
	fmt.Fprintf(&report, "%-28s %5d %6d", "total", reads, writes)
	t.Logf("document reads and writes of one container's life:\n%s", report.String())
	if writes > 6 || reads > 2 {
		t.Errorf("%d writes and %d reads, over the budget of 6 and 2", writes, reads)
	}
}

// TestNoChangeWritesNothing: an update that changes nothing and acks
// already stored read the container and write no document.
func TestNoChangeWritesNothing(t *testing.T) {
	ctx := t.Context()
	s, _ := openFresh(t)
	defer s.Close()
	if err := s.CreateContainer(ctx, storetest.NewContainer("a", "c1", "n1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, "a", "c1", nil, map[uint32]uint64{1: 5}); err != nil {
		t.Fatal(err)
	}
	_, w0 := s.Stats()
	if _, err := s.UpdateContainer(ctx, "a", "c1", func(*engine.Container) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, "a", "c1", nil, map[uint32]uint64{1: 4}); err != nil {
		t.Fatal(err)
	}
	if _, w1 := s.Stats(); w1 != w0 {
		t.Fatalf("%d writes, want none", w1-w0)
	}
}

// callCounter counts the unary calls made to Firestore, by method.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	c.calls[path.Base(method)]++
	c.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *callCounter) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for m, n := range c.calls {
		out = append(out, fmt.Sprintf("%s %d", m, n))
	}
	clear(c.calls)
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// A change of a known state that writes more documents than the
// container's (log chunks, or its removal with its final document) is
// one Commit call, as a change of the container alone is: no transaction
// whose begin is a round trip of its own.
func TestKnownWritesAreOneCall(t *testing.T) {
	_, root := openFresh(t)
	cc := &callCounter{calls: map[string]int{}}
	s, err := Open(t.Context(), testProject, Options{Root: root, unary: cc.unary})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	big := engine.LogEntry{Stream: engine.Stdout, Data: bytes.Repeat([]byte("x"), 60<<10)}
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"create", func() error { return s.CreateContainer(ctx, storetest.NewContainer("a", "c1", "one")) }},
		{"update", func() error {
			_, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.Run++; return nil })
			return err
		}},
		{"append into log chunks", func() error {
			_, err := s.AppendLogs(ctx, "a", "c1", []engine.LogEntry{big, big, big}, nil)
			return err
		}},
		{"delete with its log chunks", func() error { return s.DeleteContainer(ctx, "a", "c1") }},
		{"create again", func() error { return s.CreateContainer(ctx, storetest.NewContainer("a", "c2", "two")) }},
		{"remove with the exit", func() error {
			_, _, removed, err := s.AppendLogsRemove(ctx, "a", "c2", nil, nil, exitWith(0), func(*engine.Container) bool { return true })
			if err == nil && !removed {
				err = fmt.Errorf("not removed")
			}
			return err
		}},
	} {
		cc.take()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := cc.take(); got != "Commit 1" {
			t.Fatalf("%s made the calls %q, want one Commit", step.name, got)
		}
	}
}
