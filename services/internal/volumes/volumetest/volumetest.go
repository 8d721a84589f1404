// Package volumetest is the conformance suite of volumes.Store: every
// store that keeps volume records (bolt, firestore) runs it.
package volumetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/volumes"
)

// Run runs every contract check as a subtest; open returns a fresh, empty
// store each time (the caller closes it).
func Run(t *testing.T, open func(t *testing.T) volumes.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s volumes.Store)
	}{
		{"missing volume is not found", testMissing},
		{"created volume is found and listed in its namespace only", testCreateList},
		{"update returning nil stores nothing", testNilUpdate},
		{"update error aborts and is returned as is", testAbort},
		{"concurrent creates of one name: exactly one creates", testCreateRace},
		{"concurrent users are all recorded", testUsersRace},
		{"delete checks in the transaction", testDeleteCheck},
		{"in use and removing exclude each other under races", testInUseRace},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func create(t *testing.T, s volumes.Store, ns, name string, labels map[string]string) *volumes.Volume {
	t.Helper()
	v, err := s.UpdateVolume(t.Context(), ns, name, func(cur *volumes.Volume) (*volumes.Volume, error) {
		if cur != nil {
			return nil, nil
		}
		return &volumes.Volume{Labels: labels, Created: time.Now().UTC()}, nil
	})
	if err != nil || v == nil {
		t.Fatalf("create %s/%s: %+v, %v", ns, name, v, err)
	}
	return v
}

func testMissing(t *testing.T, s volumes.Store) {
	if _, err := s.GetVolume(t.Context(), "default", "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("get: %v, want ErrNotFound", err)
	}
	err := s.DeleteVolume(t.Context(), "default", "nope", func(*volumes.Volume) error { return nil })
	if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("delete: %v, want ErrNotFound", err)
	}
	vs, err := s.ListVolumes(t.Context(), "default")
	if err != nil || len(vs) != 0 {
		t.Fatalf("list of empty store: %v, %v", vs, err)
	}
}

func testCreateList(t *testing.T, s volumes.Store) {
	create(t, s, "default", "web-data", map[string]string{"a": "b"})
	create(t, s, "default", "cache", nil)
	create(t, s, "team-b", "cache", nil)
	v, err := s.GetVolume(t.Context(), "default", "web-data")
	if err != nil || v.Name != "web-data" || v.Namespace != "default" || v.Labels["a"] != "b" || v.Created.IsZero() {
		t.Fatalf("get: %+v, %v", v, err)
	}
	vs, err := s.ListVolumes(t.Context(), "default")
	if err != nil || len(vs) != 2 || vs[0].Name != "cache" || vs[1].Name != "web-data" {
		t.Fatalf("list default: %+v, %v", vs, err)
	}
	vs, err = s.ListVolumes(t.Context(), "team-b")
	if err != nil || len(vs) != 1 || vs[0].Namespace != "team-b" {
		t.Fatalf("list team-b: %+v, %v", vs, err)
	}
	if _, err := s.GetVolume(t.Context(), "team-b", "web-data"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("another namespace's volume: %v, want ErrNotFound", err)
	}
}

func testNilUpdate(t *testing.T, s volumes.Store) {
	v, err := s.UpdateVolume(t.Context(), "default", "x1", func(*volumes.Volume) (*volumes.Volume, error) { return nil, nil })
	if err != nil || v != nil {
		t.Fatalf("nil update of a missing volume: %+v, %v", v, err)
	}
	if _, err := s.GetVolume(t.Context(), "default", "x1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("stored after a nil update: %v", err)
	}
}

func testAbort(t *testing.T, s volumes.Store) {
	create(t, s, "default", "keep", nil)
	boom := engine.Errorf(engine.KindConflict, "boom")
	_, err := s.UpdateVolume(t.Context(), "default", "keep", func(v *volumes.Volume) (*volumes.Volume, error) {
		v.Removing = true
		return nil, boom
	})
	if err != boom {
		t.Fatalf("err = %v, want the function's error as is", err)
	}
	v, _ := s.GetVolume(t.Context(), "default", "keep")
	if v == nil || v.Removing {
		t.Fatalf("aborted update was written: %+v", v)
	}
}

func testCreateRace(t *testing.T, s volumes.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var creators []string
	for i := range 8 {
		wg.Go(func() {
			mine := fmt.Sprint(i)
			v, err := s.UpdateVolume(t.Context(), "default", "shared", func(cur *volumes.Volume) (*volumes.Volume, error) {
				if cur != nil {
					return nil, nil
				}
				return &volumes.Volume{Labels: map[string]string{"by": mine}}, nil
			})
			if err != nil || v == nil {
				t.Errorf("create %d: %+v, %v", i, v, err)
				return
			}
			if v.Labels["by"] == mine {
				mu.Lock()
				creators = append(creators, mine)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(creators) != 1 {
		t.Fatalf("creators %v, want exactly one", creators)
	}
}

func addUser(s volumes.Store, t *testing.T, name, id string) error {
	_, err := s.UpdateVolume(t.Context(), "default", name, func(cur *volumes.Volume) (*volumes.Volume, error) {
		if cur == nil {
			cur = &volumes.Volume{}
		}
		if cur.Removing {
			return nil, engine.Errorf(engine.KindConflict, "removing")
		}
		if cur.Users == nil {
			cur.Users = map[string]time.Time{}
		}
		cur.Users[id] = time.Now().UTC()
		return cur, nil
	})
	return err
}

func testUsersRace(t *testing.T, s volumes.Store) {
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := addUser(s, t, "data", fmt.Sprintf("c%d", i)); err != nil {
				t.Errorf("user %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	v, err := s.GetVolume(t.Context(), "default", "data")
	if err != nil || len(v.Users) != n {
		t.Fatalf("users %v (%v), want %d: an update was lost", v, err, n)
	}
}

func testDeleteCheck(t *testing.T, s volumes.Store) {
	create(t, s, "default", "d1", nil)
	refuse := engine.Errorf(engine.KindConflict, "in use")
	if err := s.DeleteVolume(t.Context(), "default", "d1", func(*volumes.Volume) error { return refuse }); err != refuse {
		t.Fatalf("refused delete: %v, want the check's error", err)
	}
	if _, err := s.GetVolume(t.Context(), "default", "d1"); err != nil {
		t.Fatalf("refused delete deleted: %v", err)
	}
	if err := s.DeleteVolume(t.Context(), "default", "d1", func(*volumes.Volume) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVolume(t.Context(), "default", "d1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// testInUseRace races a container taking the volume against its removal:
// never both may win.
func testInUseRace(t *testing.T, s volumes.Store) {
	for round := range 10 {
		name := fmt.Sprintf("race-%d", round)
		create(t, s, "default", name, nil)
		var wg sync.WaitGroup
		var userErr, rmErr error
		wg.Go(func() { userErr = addUser(s, t, name, "c1") })
		wg.Go(func() {
			_, rmErr = s.UpdateVolume(t.Context(), "default", name, func(cur *volumes.Volume) (*volumes.Volume, error) {
				if len(cur.Users) > 0 {
					return nil, engine.Errorf(engine.KindConflict, "in use")
				}
				cur.Removing = true
				return cur, nil
			})
		})
		wg.Wait()
		if (userErr == nil) == (rmErr == nil) {
			t.Fatalf("round %d: user err %v, remove err %v: exactly one must win", round, userErr, rmErr)
		}
	}
}
