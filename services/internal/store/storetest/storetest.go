package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// testCase is one contract check, run on a fresh store.
type testCase struct {
	name string
	fn   func(t *testing.T, s engine.Store)
}

// Run runs every contract check as a subtest; open returns a fresh, empty
// store each time (Run closes it when the subtest ends).
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	var all []testCase
	all = append(all, containerCases()...)
	all = append(all, logCases()...)
	all = append(all, imageCases()...)
	all = append(all, functionCases()...)
	all = append(all, eventCases()...)
	all = append(all, concurrencyCases()...)
	all = append(all, networkCases()...)
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// NewContainer returns a minimal container record (status created, image
// busybox, created now) for tests of stores and of code using them.
func NewContainer(ns, id, name string) *engine.Container {
	return &engine.Container{
		ID: id, Namespace: ns, Name: name, Created: time.Now().UTC(),
		Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{},
		State: engine.State{Status: engine.StatusCreated},
	}
}

func mustCreate(t *testing.T, s engine.Store, c *engine.Container) {
	t.Helper()
	if err := s.CreateContainer(t.Context(), c); err != nil {
		t.Fatalf("create %s (%s): %v", c.ID, c.Name, err)
	}
}

// wantErr checks that err is sentinel (errors.Is) and has its kind, or is
// nil when sentinel is nil.
func wantErr(t *testing.T, err error, sentinel *engine.Error) {
	t.Helper()
	if sentinel == nil {
		if err != nil {
			t.Fatalf("err = %v, want none", err)
		}
		return
	}
	if !errors.Is(err, sentinel) || engine.KindOf(err) != sentinel.Kind {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
}
