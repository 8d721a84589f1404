package firestore

import (
	"context"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

// A watch wakes for changes another process (another Store on the same
// root) makes, and not for the watching process's own writes, which the
// engine notifies by itself.
func TestWatchContainerSeesOtherProcessesChanges(t *testing.T) {
	ctx := t.Context()
	s, root := openFresh(t)
	other, err := Open(ctx, testProject, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c := storetest.NewContainer("default", "w1", "watched")
	if err := s.CreateContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	woke := make(chan struct{}, 16)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.WatchContainer(wctx, "default", "w1", func() { woke <- struct{}{} }) }()
	// The listener's first snapshot is the state this process wrote: no wake.
	expectNoWake(t, woke)
	set := func(st *Store, status string) {
		t.Helper()
		if _, err := st.UpdateContainer(ctx, "default", "w1", func(c *engine.Container) error {
			c.State.Status = status
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	set(s, engine.StatusRunning)
	expectNoWake(t, woke)
	set(other, engine.StatusExited)
	expectWake(t, woke)
	// While watched, the container is read from the watch: no document read.
	r0, _ := s.Stats()
	got, err := s.GetContainer(ctx, "default", "w1")
	if err != nil || got.State.Status != engine.StatusExited {
		t.Fatalf("get while watched = %+v, %v; want the other process's exited", got, err)
	}
	if r1, _ := s.Stats(); r1 != r0 {
		t.Fatalf("get while watched read %d documents", r1-r0)
	}
	if _, err := other.AppendLogs(ctx, "default", "w1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("x\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	expectWake(t, woke)
	if err := other.DeleteContainer(ctx, "default", "w1"); err != nil {
		t.Fatal(err)
	}
	expectWake(t, woke)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch ended with %v", err)
	}
}

func expectWake(t *testing.T, woke <-chan struct{}) {
	t.Helper()
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake for another process's change")
	}
}

func expectNoWake(t *testing.T, woke <-chan struct{}) {
	t.Helper()
	select {
	case <-woke:
		t.Fatal("woke for this process's own write")
	case <-time.After(500 * time.Millisecond):
	}
}
