package firestore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// One store's listener gets the event batches another store (another
// control plane) writes after its start key, and none of before.
func TestWatchEventsOfAnotherStore(t *testing.T) {
	ctx := t.Context()
	watcher, root := openFresh(t)
	defer watcher.Close()
	writer := openTwin(t, root)
	ev := func(n int64, action string) engine.StoredEvent {
		return engine.StoredEvent{Key: fmt.Sprintf("%020d-other-%08d", n, n), Namespace: "a",
			Message: events.Message{Type: events.ContainerEventType, Action: events.Action(action), TimeNano: n}}
	}
	if err := writer.AppendEvents(ctx, []engine.StoredEvent{ev(100, "old")}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []engine.StoredEvent, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchEvents(wctx, "a", fmt.Sprintf("%020d", 200), func(evs []engine.StoredEvent) { got <- evs })
	}()
	if err := writer.AppendEvents(ctx, []engine.StoredEvent{ev(300, "create"), ev(301, "start")}); err != nil {
		t.Fatal(err)
	}
	if err := writer.AppendEvents(ctx, []engine.StoredEvent{ev(400, "die")}); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for len(actions) < 3 {
		select {
		case evs := <-got:
			for _, e := range evs {
				actions = append(actions, string(e.Message.Action))
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the listener got %v, want create start die", actions)
		}
	}
	if fmt.Sprint(actions) != "[create start die]" {
		t.Fatalf("the listener got %v, want [create start die] (not the event before its start key)", actions)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("WatchEvents after its context ended: %v", err)
	}
}
