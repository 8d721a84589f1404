package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// A waiter on one control plane sees a change another control plane made
// to the shared store, if the engine polls.
func TestWaitSeesChangesOfAnotherControlPlane(t *testing.T) {
	tests := []struct {
		name     string
		poll     time.Duration
		wantWake bool
	}{
		{"polling engine wakes", 20 * time.Millisecond, true},
		{"engine without polling hears only its own changes", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, st := newEngine(t, &fakeFunctions{})
			b := newWithFleet(t, engine.Config{Store: st, Images: fakeImages{}, Functions: &fakeFunctions{}, Agents: silentAgents{},
				BootTimeout: 300 * time.Millisecond, CallbackURL: "ws://hub", PollInterval: tt.poll})
			t.Cleanup(func() { b.Close() })
			ctx := context.Background()
			c, err := a.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "shared", Config: &container.Config{Image: "busybox"}})
			if err != nil {
				t.Fatal(err)
			}
			setState(t, st, c.ID, func(c *engine.Container) {
				c.Run, c.State.Status, c.Instance = 1, engine.StatusRunning, "up"
			})
			got := make(chan engine.WaitResult, 1)
			go func() {
				res, err := b.Wait(ctx, "default", "shared", engine.WaitNotRunning, nil)
				if err == nil {
					got <- res
				}
			}()
			time.Sleep(50 * time.Millisecond)
			// What the other control plane's hub stores when the process exits.
			setState(t, st, c.ID, func(c *engine.Container) {
				c.ExitedRun, c.State.Status, c.State.ExitCode = 1, engine.StatusExited, 3
			})
			select {
			case res := <-got:
				if !tt.wantWake {
					t.Fatalf("woke without polling: %+v", res)
				}
				if res.StatusCode != 3 {
					t.Fatalf("wait = %+v, want code 3", res)
				}
			case <-time.After(time.Second):
				if tt.wantWake {
					t.Fatal("wait did not see the other control plane's change")
				}
			}
		})
	}
}

// Containers an earlier control plane left with a run in progress end with
// exit 255 and a clear error if their agents never come back.
func TestRecoverEndsRunsWhoseAgentNeverReturns(t *testing.T) {
	tests := []struct {
		name   string
		status string
	}{
		{"running", engine.StatusRunning},
		{"start cut short", engine.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, st := newEngine(t, &fakeFunctions{})
			ctx := context.Background()
			c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "left", Config: &container.Config{Image: "busybox"}})
			if err != nil {
				t.Fatal(err)
			}
			setState(t, st, c.ID, func(c *engine.Container) {
				c.Run, c.State.Status, c.Instance = 1, tt.status, "up"
			})
			e.Recover("default")
			res, err := e.Wait(ctx, "default", "left", engine.WaitNotRunning, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Container(ctx, "default", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 255 || got.State.Status != engine.StatusExited || got.Instance != "gone" ||
				!strings.Contains(got.State.Error, "lost while the control plane was down") {
				t.Fatalf("after recover: wait %+v, state %+v, instance %q", res, got.State, got.Instance)
			}
		})
	}
}

func setState(t *testing.T, st engine.Store, id string, fn func(*engine.Container)) {
	t.Helper()
	if _, err := st.UpdateContainer(context.Background(), "default", id, func(c *engine.Container) error { fn(c); return nil }); err != nil {
		t.Fatal(err)
	}
}

// While one control plane starts a container, another sharing the store
// refuses its agent for now (it dials again), so the agent reaches the one
// waiting for it; once the start is over, any control plane takes it.
func TestAgentOfAContainerAnotherControlPlaneStartsIsRefusedForNow(t *testing.T) {
	secret := "s3cret"
	sum := sha256.Sum256([]byte(secret))
	tests := []struct {
		name      string
		startedBy string
		claim     time.Duration // from now
		want      engine.Kind   // 0: accepted
	}{
		{"another process is starting it", "other-process", time.Minute, engine.KindUnavailable},
		{"its claim has run out", "other-process", -time.Second, 0},
		{"no start in progress", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, st := newEngine(t, &fakeFunctions{})
			ctx := context.Background()
			c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "claimed", Config: &container.Config{Image: "busybox"}})
			if err != nil {
				t.Fatal(err)
			}
			setState(t, st, c.ID, func(c *engine.Container) {
				c.SecretHash = hex.EncodeToString(sum[:])
				c.StartedBy = tt.startedBy
				if tt.claim != 0 {
					c.StartClaim = time.Now().Add(tt.claim)
				}
			})
			err = e.AgentBackend().AuthorizeAgent(ctx, "default/"+c.ID, secret)
			switch {
			case tt.want == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != 0 && engine.KindOf(err) != tt.want:
				t.Fatalf("err = %v (kind %v), want kind %v", err, engine.KindOf(err), tt.want)
			}
		})
	}
}

// Events outlive the control plane that published them: a new engine on
// the same store serves them for --since, once each.
func TestEventsOutliveTheEngine(t *testing.T) {
	a, st := newEngine(t, &fakeFunctions{})
	ctx := context.Background()
	since := time.Now()
	c, err := a.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "evented", Config: &container.Config{Image: "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Rename(ctx, "default", c.ID, "renamed"); err != nil {
		t.Fatal(err)
	}
	a.Close() // flushes what is queued
	b := newWithFleet(t, engine.Config{Store: st, Images: fakeImages{}, Functions: &fakeFunctions{}, Agents: silentAgents{}, CallbackURL: "ws://hub"})
	t.Cleanup(func() { b.Close() })
	var got []string
	err = b.Events(ctx, "default", engine.EventOptions{Since: since, Until: time.Now()}, func(m events.Message) error {
		if m.Actor.ID == c.ID {
			got = append(got, string(m.Action))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "create,rename" {
		t.Fatalf("events after a restart: %v, want create,rename", got)
	}
}
