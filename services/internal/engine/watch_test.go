package engine

import (
	"context"
	"testing"
)

// watchingStore is a store other control planes share as far as watches
// go: it reports each watch of a container opened and ended.
type watchingStore struct {
	Store         // nil: only WatchContainer is called
	opened, ended chan string
}

func (s *watchingStore) WatchContainer(ctx context.Context, _, id string, _ func()) error {
	s.opened <- id
	<-ctx.Done()
	s.ended <- id
	return nil
}

func (s *watchingStore) PruneEvents(context.Context, string, string) error { return nil }

// A create on a shared store watches its container from beside its write
// until the client's next requests (docker run's attach and wait) take the
// watch over, so they need not read the store; the watch then ends with
// them, as any waiter's, and never outlives a failed create.
func TestCreatedContainerIsWatchedUntilAWaiterTakesOver(t *testing.T) {
	for _, tt := range []struct {
		name string
		// after the create's hold, with whether the create succeeded,
		// returns whether the watch must be over at once
		then func(e *Engine, hold func(bool)) bool
	}{
		{"failed create ends it at once", func(e *Engine, hold func(bool)) bool {
			hold(false)
			return true
		}},
		{"a waiter takes it over and ends it", func(e *Engine, hold func(bool)) bool {
			hold(true)
			release := e.watch("default", "c1")
			release()
			return true
		}},
		{"two waiters: it ends with the last", func(e *Engine, hold func(bool)) bool {
			hold(true)
			r1, r2 := e.watch("default", "c1"), e.watch("default", "c1")
			r1()
			if e.watched("c1") != 1 {
				t.Errorf("after the first waiter: %d holds, want 1", e.watched("c1"))
			}
			r2()
			return true
		}},
		{"no waiter: it ends after createdWatch", func(e *Engine, hold func(bool)) bool {
			hold(true)
			return false
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &watchingStore{opened: make(chan string, 1), ended: make(chan string, 1)}
			e := New(Config{Store: st})
			defer e.Close()
			hold := e.watchCreated("default", "c1")
			if id := <-st.opened; id != "c1" {
				t.Fatalf("watch opened for %q", id)
			}
			atOnce := tt.then(e, hold)
			if atOnce && e.watched("c1") != 0 {
				t.Fatalf("%d holds left on the watch, want none", e.watched("c1"))
			}
			if !atOnce && e.watched("c1") != 1 {
				t.Fatalf("%d holds on the watch, want the create's", e.watched("c1"))
			}
			<-st.ended // without a waiter, createdWatch later
		})
	}
}

// On a store only this process writes there is nothing to watch.
func TestCreatedContainerUnwatchedOnAnUnsharedStore(t *testing.T) {
	e := New(Config{})
	defer e.Close()
	e.watchCreated("default", "c1")(true)
	if n := e.watched("c1"); n != 0 {
		t.Fatalf("%d holds on a watch of an unshared store", n)
	}
}

// watched is the number of holds on container id's watch.
func (e *Engine) watched(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := e.watches[id]; w != nil {
		return w.n
	}
	return 0
}
