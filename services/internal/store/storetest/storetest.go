// Package storetest is the one conformance suite for engine.Store: every
// implementation's tests call Run, so all of them keep the same semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Run runs the suite; open returns a fresh, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store)
	}{
		{"names are unique per namespace", testNames},
		{"lookup by id, name and prefix", testLookup},
		{"update is atomic read-modify-write", testUpdateAtomic},
		{"parallel creates with one name: one wins", testParallelCreate},
		{"failed update writes nothing", testUpdateAbort},
		{"rename frees the old name", testRename},
		{"delete frees the name and drops logs", testDelete},
		{"logs get sequence numbers and acks", testLogs},
		{"list is per namespace, newest first", testList},
		{"image refs move between images", testImages},
		{"one claimer creates a function", testFunctionClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

var ctx = context.Background()

// NewContainer returns a minimal container record for tests.
func NewContainer(ns, id, name string) *engine.Container {
	return &engine.Container{
		ID: id, Namespace: ns, Name: name, Created: time.Now().UTC(),
		Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{},
		State: engine.State{Status: engine.StatusCreated},
	}
}

func mustCreate(t *testing.T, s engine.Store, c *engine.Container) {
	t.Helper()
	if err := s.CreateContainer(ctx, c); err != nil {
		t.Fatalf("create %s: %v", c.Name, err)
	}
}

func wantKind(t *testing.T, err error, sentinel *engine.Error) {
	t.Helper()
	if !errors.Is(err, sentinel) || engine.KindOf(err) != sentinel.Kind {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
}

func testNames(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "aaaa1111", "web"))
	wantKind(t, s.CreateContainer(ctx, NewContainer("a", "aaaa2222", "web")), engine.ErrConflict)
	mustCreate(t, s, NewContainer("b", "bbbb1111", "web"))
	wantKind(t, s.CreateContainer(ctx, NewContainer("a", "aaaa1111", "other")), engine.ErrConflict)
}

func testLookup(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "abc123", "web"))
	mustCreate(t, s, NewContainer("a", "abd456", "db"))
	mustCreate(t, s, NewContainer("b", "abe789", "web"))
	for _, tc := range []struct{ ref, want string }{
		{"abc123", "abc123"}, {"web", "abc123"}, {"/web", "abc123"}, {"abd", "abd456"}, {"db", "abd456"},
	} {
		c, err := s.GetContainer(ctx, "a", tc.ref)
		if err != nil || c.ID != tc.want {
			t.Fatalf("GetContainer(%q) = %v, %v; want %s", tc.ref, c, err, tc.want)
		}
	}
	_, err := s.GetContainer(ctx, "a", "ab")
	wantKind(t, err, engine.ErrAmbiguous)
	_, err = s.GetContainer(ctx, "a", "zzz")
	wantKind(t, err, engine.ErrNotFound)
	_, err = s.GetContainer(ctx, "a", "abe789")
	wantKind(t, err, engine.ErrNotFound) // another namespace's container
}

func testUpdateAtomic(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.RestartCount++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c, err := s.GetContainer(ctx, "a", "c1")
	if err != nil || c.RestartCount != 20 {
		t.Fatalf("RestartCount = %v, %v; want 20", c, err)
	}
	_, err = s.UpdateContainer(ctx, "a", "nope", func(*engine.Container) error { return nil })
	wantKind(t, err, engine.ErrNotFound)
}

func testParallelCreate(t *testing.T, s engine.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := s.CreateContainer(ctx, NewContainer("a", fmt.Sprintf("id%02d", i), "same"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, engine.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 || conflicts != 9 {
		t.Fatalf("wins %d conflicts %d, want 1 and 9", wins, conflicts)
	}
}

func testUpdateAbort(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	boom := errors.New("boom")
	_, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error {
		c.State.Status = engine.StatusRunning
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	c, _ := s.GetContainer(ctx, "a", "c1")
	if c.State.Status != engine.StatusCreated {
		t.Fatalf("status = %s after an aborted update", c.State.Status)
	}
}

func testRename(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "old"))
	mustCreate(t, s, NewContainer("a", "c2", "taken"))
	_, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.Name = "taken"; return nil })
	wantKind(t, err, engine.ErrConflict)
	if _, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.Name = "new"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, err := s.GetContainer(ctx, "a", "new"); err != nil || c.ID != "c1" {
		t.Fatalf("by new name: %v %v", c, err)
	}
	mustCreate(t, s, NewContainer("a", "c3", "old"))
}

func testDelete(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	if _, err := s.AppendLogs(ctx, "a", "c1", []engine.LogEntry{{Stream: 1, Data: []byte("x")}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer(ctx, "a", "c1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.DeleteContainer(ctx, "a", "c1"), engine.ErrNotFound)
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	if logs, err := s.ReadLogs(ctx, "a", "c1", 0, 0); err != nil || len(logs) != 0 {
		t.Fatalf("logs of a re-created container: %v %v", logs, err)
	}
}

func testLogs(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	now := time.Now().UTC().Truncate(time.Microsecond)
	got, err := s.AppendLogs(ctx, "a", "c1", []engine.LogEntry{
		{Stream: engine.Stdout, Time: now, Data: []byte("one\n")},
		{Stream: engine.Stderr, Time: now, Data: []byte("two\n")},
	}, map[uint32]uint64{1: 5, 2: 3})
	if err != nil || len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("append = %+v, %v", got, err)
	}
	if _, err := s.AppendLogs(ctx, "a", "c1", []engine.LogEntry{{Stream: engine.Stdout, Time: now, Data: []byte("three\n")}}, map[uint32]uint64{1: 6, 2: 1}); err != nil {
		t.Fatal(err)
	}
	c, _ := s.GetContainer(ctx, "a", "c1")
	if c.LogSeq != 3 || c.Acked[1] != 6 || c.Acked[2] != 3 {
		t.Fatalf("LogSeq %d Acked %v, want 3 and {1:6 2:3}", c.LogSeq, c.Acked)
	}
	all, err := s.ReadLogs(ctx, "a", "c1", 0, 0)
	if err != nil || len(all) != 3 || string(all[2].Data) != "three\n" || all[1].Stream != engine.Stderr || !all[0].Time.Equal(now) {
		t.Fatalf("read all = %+v, %v", all, err)
	}
	page, err := s.ReadLogs(ctx, "a", "c1", 1, 1)
	if err != nil || len(page) != 1 || page[0].Seq != 2 {
		t.Fatalf("read after 1 limit 1 = %+v, %v", page, err)
	}
	_, err = s.AppendLogs(ctx, "a", "gone", []engine.LogEntry{{Stream: 1}}, nil)
	wantKind(t, err, engine.ErrNotFound)
}

func testList(t *testing.T, s engine.Store) {
	base := time.Now().UTC()
	for i, id := range []string{"c1", "c2", "c3"} {
		c := NewContainer("a", id, "n"+id)
		c.Created = base.Add(time.Duration(i) * time.Second)
		mustCreate(t, s, c)
	}
	mustCreate(t, s, NewContainer("b", "x1", "x"))
	cs, err := s.ListContainers(ctx, "a")
	if err != nil || len(cs) != 3 || cs[0].ID != "c3" || cs[2].ID != "c1" {
		t.Fatalf("list = %v, %v", cs, err)
	}
}

func testImages(t *testing.T, s engine.Store) {
	id1 := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	id2 := "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	if err := s.PutImage(ctx, &engine.Image{ID: id1, RepoTags: []string{"busybox:latest"}, RepoDigests: []string{"busybox@sha256:aa"}}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{id1, id1[7:], "1111", "busybox:latest", "busybox@sha256:aa"} {
		if img, err := s.GetImage(ctx, ref); err != nil || img.ID != id1 {
			t.Fatalf("GetImage(%q) = %v, %v", ref, img, err)
		}
	}
	if err := s.PutImage(ctx, &engine.Image{ID: id2, RepoTags: []string{"busybox:latest"}}); err != nil {
		t.Fatal(err)
	}
	if img, err := s.GetImage(ctx, "busybox:latest"); err != nil || img.ID != id2 {
		t.Fatalf("tag did not move: %v %v", img, err)
	}
	old, _ := s.GetImage(ctx, id1)
	if len(old.RepoTags) != 0 {
		t.Fatalf("old image keeps tags %v", old.RepoTags)
	}
	if err := s.PutImage(ctx, &engine.Image{ID: id2, RepoTags: []string{"busybox:1.36"}}); err != nil {
		t.Fatal(err)
	}
	if img, err := s.GetImage(ctx, "busybox:latest"); err != nil || img.ID != id2 || len(img.RepoTags) != 2 {
		t.Fatalf("second tag of one image: %+v %v", img, err)
	}
	if imgs, err := s.ListImages(ctx); err != nil || len(imgs) != 2 {
		t.Fatalf("list = %v, %v", imgs, err)
	}
	if err := s.DeleteImage(ctx, id2); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetImage(ctx, "busybox:latest")
	wantKind(t, err, engine.ErrNotFound)
	_, err = s.GetImage(ctx, "nothex!")
	wantKind(t, err, engine.ErrNotFound)
}

func testFunctionClaim(t *testing.T, s engine.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateFunction(ctx, "img-1", func(f *engine.Function) (*engine.Function, error) {
				if f != nil {
					return nil, nil
				}
				mu.Lock()
				created++
				mu.Unlock()
				return &engine.Function{Name: "fn-1", Status: engine.FunctionCreating}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := s.GetFunction(ctx, "img-1")
	if err != nil || f.Key != "img-1" || f.Name != "fn-1" {
		t.Fatalf("function = %+v, %v", f, err)
	}
	if created < 1 {
		t.Fatal("nobody created the function")
	}
	fs, err := s.ListFunctions(ctx)
	if err != nil || len(fs) != 1 {
		t.Fatalf("functions = %v, %v", fs, err)
	}
	_, err = s.GetFunction(ctx, "img-2")
	wantKind(t, err, engine.ErrNotFound)
}
