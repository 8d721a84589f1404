package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// teamEngine is an engine with quotas, prices and a usage ledger over the
// embedded store.
func teamEngine(t *testing.T, fns *fakeFunctions, q engine.Quota) (*engine.Engine, *bolt.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutImage(context.Background(), &engine.Image{ID: "sha256:" + strings.Repeat("cd", 32), RepoTags: []string{"busybox:latest"}, Config: &container.Config{Cmd: []string{"sh"}}}); err != nil {
		t.Fatal(err)
	}
	e := newWithFleet(t, engine.Config{Store: st, Images: fakeImages{}, Functions: fns, Agents: silentAgents{}, BootTimeout: 200 * time.Millisecond, CallbackURL: "ws://hub",
		Quota: q, Ledger: st, Prices: engine.Prices{VCPUSecond: 0.000024, GiBSecond: 0.0000025, Invocation: 0.0000004}})
	return e, st
}

func create(t *testing.T, e *engine.Engine, ns, name string) string {
	t.Helper()
	c, err := e.Create(t.Context(), engine.CreateRequest{Namespace: ns, Name: name, Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// markRunning stores a container as running, as if its agent had started it.
func markRunning(t *testing.T, st *bolt.Store, ns, id string) {
	t.Helper()
	if _, err := st.UpdateContainer(t.Context(), ns, id, func(c *engine.Container) error {
		c.State.Status = engine.StatusRunning
		c.Run, c.ExitedRun = 1, 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestQuotaRefusesStartsWith429(t *testing.T) {
	tests := []struct {
		name    string
		quota   engine.Quota
		running int
		logs    int
		setting string
	}{
		{"running containers", engine.Quota{Running: 2}, 2, 0, "--quota-running"},
		{"vCPUs", engine.Quota{VCPU: 1.5}, 1, 0, "--quota-vcpu"},
		{"memory", engine.Quota{Memory: 1 << 30}, 2, 0, "--quota-memory"},
		{"stored log bytes", engine.Quota{LogBytes: 10}, 0, 10, "--quota-log-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, st := teamEngine(t, &fakeFunctions{invokeErr: errors.New("no instance")}, tt.quota)
			for i := range tt.running {
				markRunning(t, st, "alice", create(t, e, "alice", "up"+string(rune('a'+i))))
			}
			if tt.logs > 0 {
				id := create(t, e, "alice", "chatty")
				if _, err := st.AppendLogs(t.Context(), "alice", id, []engine.LogEntry{{Stream: 1, Data: []byte(strings.Repeat("x", tt.logs))}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			next := create(t, e, "alice", "next")
			err := e.Start(t.Context(), "alice", next)
			if engine.KindOf(err) != engine.KindTooManyRequests || !strings.Contains(err.Error(), tt.setting) || !strings.Contains(err.Error(), "namespace alice") {
				t.Fatalf("start over quota: %v (kind %v), want 429 naming %s", err, engine.KindOf(err), tt.setting)
			}
			// Another namespace has its own quota.
			other := create(t, e, "bob", "next")
			if err := e.Start(t.Context(), "bob", other); engine.KindOf(err) == engine.KindTooManyRequests {
				t.Fatalf("bob's start counted alice's containers: %v", err)
			}
		})
	}
}

func TestUsageIsRecordedPerInstance(t *testing.T) {
	e, st := teamEngine(t, &fakeFunctions{invokeErr: errors.New("instance ended")}, engine.Quota{})
	since := time.Now()
	id := create(t, e, "alice", "web")
	_ = e.Start(t.Context(), "alice", id) // the instance ends at once
	var c *engine.Container
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if c, err = st.GetContainer(t.Context(), "alice", id); err != nil {
			t.Fatal(err)
		}
		if c.Usage.Invocations == 1 && c.Usage.InstanceStarted.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage after the instance ended: %+v", c.Usage)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cost := e.ContainerCost(c, time.Now())
	if cost.Invocations != 1 || cost.USD < 0.0000004 || cost.GiBSeconds*2 > cost.VCPUSeconds+0.002 {
		t.Fatalf("container cost %+v", cost)
	}
	got, err := e.NamespaceUsage(t.Context(), "alice", since)
	if err != nil || got.Invocations != 1 {
		t.Fatalf("alice's usage %+v, %v", got, err)
	}
	if err := e.Remove(t.Context(), "alice", id, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.NamespaceUsage(t.Context(), "alice", since); got.Invocations != 1 {
		t.Fatalf("after rm, alice's usage %+v: removed containers still count", got)
	}
	if got, _ := e.NamespaceUsage(t.Context(), "bob", since); got.Invocations != 0 || got.USD != 0 {
		t.Fatalf("bob's usage %+v", got)
	}
	if got, _ := e.NamespaceUsage(t.Context(), "alice", time.Now().Add(time.Hour)); got.Invocations != 0 {
		t.Fatalf("usage since the future %+v", got)
	}
}
