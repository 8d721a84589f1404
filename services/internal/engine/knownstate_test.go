package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// staleStore is the embedded store with a KnownContainer that answers a
// state of the container taken earlier, as a control plane's known state
// is when another one changed the container since.
type staleStore struct {
	engine.Store
	known *engine.Container
}

func (s *staleStore) KnownContainer(ns, id string) (*engine.Container, bool) {
	if s.known == nil || s.known.ID != id {
		return nil, false
	}
	c := *s.known
	return &c, true
}

// A start decides on the state its control plane knows, which another
// control plane may have changed since: the claim, written only on the
// record as it is, refuses what the record refuses. A container started
// meanwhile is not started twice; one being removed is not started.
func TestStartOnAStaleKnownState(t *testing.T) {
	for _, tt := range []struct {
		name     string
		change   func(*engine.Container)
		wantKind engine.Kind
	}{
		{"started by another", func(c *engine.Container) { c.Run, c.State.Status = 1, engine.StatusRunning }, engine.KindNotModified},
		{"being removed by another", func(c *engine.Container) { c.State.Status = engine.StatusRemoving }, engine.KindConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := boltWithBusybox(t, "true")
			st := &staleStore{Store: b}
			e := newWithFleet(t, engine.Config{Store: st, Images: fakeImages{}, Functions: &fakeFunctions{}, Agents: silentAgents{}, BootTimeout: 200 * time.Millisecond, CallbackURL: "ws://hub"})
			c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "stale", Config: &container.Config{Image: "busybox"}})
			if err != nil {
				t.Fatal(err)
			}
			st.known = c // what this control plane knows: created
			if _, err := b.UpdateContainer(ctx, "default", c.ID, func(c *engine.Container) error { tt.change(c); return nil }); err != nil {
				t.Fatal(err)
			}
			err = e.Start(ctx, "default", c.ID)
			if engine.KindOf(err) != tt.wantKind {
				t.Fatalf("start: %v (kind %v), want kind %v", err, engine.KindOf(err), tt.wantKind)
			}
			got, err := b.GetContainer(ctx, "default", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := *c
			tt.change(&want)
			if got.Run != want.Run || got.State.Status != want.State.Status {
				t.Errorf("after the start: run %d %s, want run %d %s (as the other control plane left it)", got.Run, got.State.Status, want.Run, want.State.Status)
			}
		})
	}
}
