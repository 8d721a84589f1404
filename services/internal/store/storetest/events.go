package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/events"
	"github.com/sockerless/sockerless/services/internal/engine"
)

func eventCases() []testCase {
	return []testCase{
		{"events read back in key order, after a key, per namespace", testEventsOrder},
		{"events are pruned before a key", testEventsPrune},
	}
}

// event returns a stored event of ns with key k and action act.
func event(ns, k, act string) engine.StoredEvent {
	return engine.StoredEvent{Key: k, Namespace: ns, Message: events.Message{
		Type: events.ContainerEventType, Action: events.Action(act),
		Actor: events.Actor{ID: "c-" + k, Attributes: map[string]string{"name": "n" + k}},
	}}
}

func keysOf(evs []engine.StoredEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Key)
	}
	return out
}

func testEventsOrder(t *testing.T, s engine.Store) {
	ctx := t.Context()
	// Two batches, written out of order, and another namespace.
	if err := s.AppendEvents(ctx, []engine.StoredEvent{event("a", "0003", "die"), event("b", "0002", "start"), event("a", "0004", "destroy")}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []engine.StoredEvent{event("a", "0001", "create"), event("a", "0002", "start")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ns, after string
		limit     int
		want      []string
	}{
		{"a", "", 0, []string{"0001", "0002", "0003", "0004"}},
		{"a", "0002", 0, []string{"0003", "0004"}},
		{"a", "00025", 0, []string{"0003", "0004"}},
		{"a", "", 2, []string{"0001", "0002"}},
		{"a", "0004", 0, nil},
		{"b", "", 0, []string{"0002"}},
		{"c", "", 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ReadEvents(ctx, tt.ns, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keysOf(got), tt.want) {
			t.Errorf("ReadEvents(%q, after %q, limit %d) = %v, want %v", tt.ns, tt.after, tt.limit, keysOf(got), tt.want)
		}
	}
	got, err := s.ReadEvents(ctx, "a", "0002", 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("read one: %v, %v", got, err)
	}
	if ev := got[0]; ev.Namespace != "a" || ev.Message.Action != "die" || ev.Message.Actor.ID != "c-0003" || ev.Message.Actor.Attributes["name"] != "n0003" {
		t.Fatalf("event read back as %+v", ev)
	}
}

func testEventsPrune(t *testing.T, s engine.Store) {
	ctx := t.Context()
	var evs []engine.StoredEvent
	for i := range 30 {
		evs = append(evs, event("a", fmt.Sprintf("%04d", i), "start"))
	}
	evs = append(evs, event("b", "0001", "start"))
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneEvents(ctx, "a", "0025"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadEvents(ctx, "a", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0025", "0026", "0027", "0028", "0029"}; !slices.Equal(keysOf(got), want) {
		t.Fatalf("after prune: %v, want %v", keysOf(got), want)
	}
	if got, _ := s.ReadEvents(ctx, "b", "", 0); len(got) != 1 {
		t.Fatalf("prune of a touched b: %v", keysOf(got))
	}
}
