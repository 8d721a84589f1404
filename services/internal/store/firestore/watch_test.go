package firestore

import (
	"context"
	"errors"
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
	other := openTwin(t, root)
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

// A rename moves the container to the document of its new name; the
// watch follows it and reports a change, not a removal: reads answered
// from the watch keep finding the container, under its new name. Only
// the removal of the container itself is one.
func TestWatchFollowsRename(t *testing.T) {
	ctx := t.Context()
	s, root := openFresh(t)
	other := openTwin(t, root)
	if err := s.CreateContainer(ctx, storetest.NewContainer("default", "w1", "before")); err != nil {
		t.Fatal(err)
	}
	woke := make(chan struct{}, 16)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.WatchContainer(wctx, "default", "w1", func() { woke <- struct{}{} }) }()
	expectNoWake(t, woke)
	rename := func(st *Store, name string) {
		t.Helper()
		if _, err := st.UpdateContainer(ctx, "default", "w1", func(c *engine.Container) error {
			c.Name = name
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	named := func(want string) {
		t.Helper()
		for _, ref := range []string{"w1", want} {
			if c, err := s.GetContainer(ctx, "default", ref); err != nil || c.ID != "w1" || c.Name != want {
				t.Fatalf("GetContainer(%q) while watched = %+v, %v; want w1 named %s", ref, c, err, want)
			}
		}
		if _, err := s.GetContainer(ctx, "default", "before"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("the old name still finds a container: %v", err)
		}
	}
	rename(other, "by-other")
	expectWake(t, woke)
	r0, _ := s.Stats()
	if c, err := s.GetContainer(ctx, "default", "w1"); err != nil || c.Name != "by-other" {
		t.Fatalf("get by id after the other's rename = %+v, %v; want named by-other", c, err)
	}
	if r1, _ := s.Stats(); r1 != r0 {
		t.Fatalf("get by id of a watched container read %d documents after a rename", r1-r0)
	}
	named("by-other")
	rename(s, "by-self") // its own: no wake
	expectNoWake(t, woke)
	named("by-self")
	if err := other.DeleteContainer(ctx, "default", "w1"); err != nil {
		t.Fatal(err)
	}
	expectWake(t, woke)
	if _, err := s.GetContainer(ctx, "default", "w1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("get after the other's removal: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch ended with %v", err)
	}
}
