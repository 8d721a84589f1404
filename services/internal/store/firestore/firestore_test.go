package firestore

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/store/firestore/fsemu"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

const testProject = "sockerless-test"

func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }

// openFresh opens a store under a random root: empty, and isolated from
// every other test sharing the emulator.
func openFresh(t testing.TB) (*Store, string) {
	t.Helper()
	fsemu.Start(t)
	var b [8]byte
	rand.Read(b[:])
	root := "sockerless-test/" + hex.EncodeToString(b[:])
	s, err := Open(t.Context(), testProject, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// openTwin opens another store on root, as another control plane shares
// the first one's; it closes when the test ends.
func openTwin(t testing.TB, root string) *Store {
	t.Helper()
	s, err := Open(t.Context(), testProject, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store {
		s, _ := openFresh(t)
		return s
	})
}

func TestStatePersistsAcrossReopen(t *testing.T) {
	ctx := t.Context()
	s, root := openFresh(t)
	c := storetest.NewContainer("default", "c1", "web")
	c.State = engine.State{Status: engine.StatusExited, ExitCode: 3}
	if err := s.CreateContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, "default", "c1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("hi\n")}}, map[uint32]uint64{1: 4}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTwin(t, root)
	got, err := s.GetContainer(ctx, "default", "web")
	if err != nil || got.State.ExitCode != 3 || got.LogSeq != 1 || got.Acked[1] != 4 {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	more, err := s.AppendLogs(ctx, "default", "c1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("again\n")}}, nil)
	if err != nil || more[0].Seq != 2 {
		t.Fatalf("next append %+v, %v", more, err)
	}
	logs, err := s.ReadLogs(ctx, "default", "c1", 0, 0)
	if err != nil || len(logs) != 2 || string(logs[0].Data)+string(logs[1].Data) != "hi\nagain\n" {
		t.Fatalf("logs %+v, %v", logs, err)
	}
}

// TestLogChunking crosses every boundary of the log layout: the inline
// log's byte and entry caps, entries split over several chunks, the
// per-chunk entry cap, and paging through all of them.
func TestLogChunking(t *testing.T) {
	big := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	lines := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = fmt.Appendf(nil, "line %d\n", i)
		}
		return out
	}
	tests := []struct {
		name       string
		batches    [][][]byte
		wantChunks int64
	}{
		{"small output stays inline", [][][]byte{lines(3), {nil}, lines(2)}, 0},
		{"more entries than inline spill to a chunk", [][][]byte{lines(200), lines(100)}, 1},
		{"more bytes than inline spill to a chunk", [][][]byte{{big(40<<10, 'a')}, {big(40<<10, 'b')}, {[]byte("x")}}, 1},
		{"big entries split over chunks", [][][]byte{
			{[]byte("small\n"), big(600<<10, 'x'), []byte("after big\n")},
			{big(200<<10, 'y')},      // does not fit the tail: a fresh chunk
			{big(chunkBytes, 'z')},   // exactly a chunk: split, as headers need room
			{big(3*chunkBytes, 'w')}, // several chunks
			lines(1200),              // more than chunkEntries in one call
			{nil, []byte("last\n")},
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s, _ := openFresh(t)
			defer s.Close()
			if err := s.CreateContainer(ctx, storetest.NewContainer("a", "c1", "n1")); err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			for _, b := range tt.batches {
				entries := make([]engine.LogEntry, len(b))
				for i, d := range b {
					entries[i] = engine.LogEntry{Stream: engine.Stdout, Time: time.Unix(int64(len(want)+i), 0).UTC(), Data: d}
				}
				if _, err := s.AppendLogs(ctx, "a", "c1", entries, nil); err != nil {
					t.Fatal(err)
				}
				want = append(want, b...)
			}
			check := func(t *testing.T, got []engine.LogEntry, from uint64) {
				t.Helper()
				for i, e := range got {
					seq := from + uint64(i)
					if e.Seq != seq || !bytes.Equal(e.Data, want[seq-1]) || !e.Time.Equal(time.Unix(int64(seq-1), 0)) {
						t.Fatalf("entry %d: seq %d, %d bytes; want seq %d, %d bytes", i, e.Seq, len(e.Data), seq, len(want[seq-1]))
					}
				}
			}
			got, err := s.ReadLogs(ctx, "a", "c1", 0, 0)
			if err != nil || len(got) != len(want) {
				t.Fatalf("read %d entries, %v; want %d", len(got), err, len(want))
			}
			check(t, got, 1)
			for _, limit := range []int{1, 7, 256, 257, 500, 501} {
				var after uint64
				for {
					got, err := s.ReadLogs(ctx, "a", "c1", after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) == 0 {
						break
					}
					if len(got) > limit {
						t.Fatalf("limit %d gave %d", limit, len(got))
					}
					check(t, got, after+1)
					after = got[len(got)-1].Seq
				}
				if after != uint64(len(want)) {
					t.Fatalf("limit %d: paged to %d, want %d", limit, after, len(want))
				}
			}
			snap, err := s.containerRef("a", "n1").Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var d containerDoc
			if err := snap.DataTo(&d); err != nil {
				t.Fatal(err)
			}
			if d.Chunks != tt.wantChunks {
				t.Fatalf("%d chunks, want %d", d.Chunks, tt.wantChunks)
			}
			if err := s.DeleteContainer(ctx, "a", "c1"); err != nil {
				t.Fatal(err)
			}
			left, err := s.logRef("c1", d.Gen).Collection(colChunks).Documents(ctx).GetAll()
			if err != nil || len(left) != 0 {
				t.Fatalf("%d chunks left after delete, %v", len(left), err)
			}
		})
	}
}

func TestDocID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc123", "abc123"},
		{"busybox:latest", "busybox:latest"},
		{"me/app:v1", "me%2Fapp:v1"},
		{"__x__", "%5F_x__"},
		{"a_b", "a_b"},
		{"100%", "100%25"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{"", "%"},
		{"é", "%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := docID(tt.in); got != tt.want {
				t.Fatalf("docID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if !strings.HasPrefix(docID("sha256:abcdef"), docID("sha256:abc")) {
		t.Fatal("escaping does not keep prefixes")
	}
}

// TestTwoStoresRace races two stores (two control planes) on one root:
// the in-process locks do not span them, so Firestore's transactions and
// preconditions must keep the records right.
func TestTwoStoresRace(t *testing.T) {
	ctx := t.Context()
	s1, root := openFresh(t)
	defer s1.Close()
	s2 := openTwin(t, root)
	stores := []*Store{s1, s2}
	const perStore = 3
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	wins := make(chan string, 100)
	for si, s := range stores {
		for i := range perStore {
			wg.Go(func() {
				id := fmt.Sprintf("s%d-%d", si, i)
				switch err := s.CreateContainer(ctx, storetest.NewContainer("a", id, "shared")); {
				case err == nil:
					wins <- id
				case engine.KindOf(err) != engine.KindConflict:
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	if len(wins) != 1 || len(errs) != 0 {
		t.Fatalf("%d winners, errors %d; want one winner", len(wins), len(errs))
	}
	winner := <-wins
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				if _, err := s.UpdateContainer(ctx, "a", winner, func(c *engine.Container) error {
					c.RestartCount++
					return nil
				}); err != nil {
					errs <- err
				}
			})
			wg.Go(func() {
				if _, err := s.AppendLogs(ctx, "a", winner, []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("x")}}, nil); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, err := s1.GetContainer(ctx, "a", "shared")
	if err != nil || c.RestartCount != 2*perStore || c.LogSeq != 2*perStore {
		t.Fatalf("container %+v, %v; want %d updates and entries", c, err, 2*perStore)
	}
	logs, err := s2.ReadLogs(ctx, "a", winner, 0, 0)
	if err != nil || len(logs) != 2*perStore || logs[len(logs)-1].Seq != 2*perStore {
		t.Fatalf("logs %+v, %v", logs, err)
	}
}

// TestKnownStateGoneStale: a store changes a container on the state it
// knows without reading it; when another store (control plane) changed
// the container since, nothing is lost: the change is made again on the
// container as it is. Likewise appends and the removal.
func TestKnownStateGoneStale(t *testing.T) {
	ctx := t.Context()
	s1, root := openFresh(t)
	defer s1.Close()
	s2 := openTwin(t, root)
	if err := s1.CreateContainer(ctx, storetest.NewContainer("a", "c1", "n1")); err != nil {
		t.Fatal(err)
	}
	inc := func(s *Store) {
		t.Helper()
		if _, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error {
			c.RestartCount++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne := func(s *Store, line string) {
		t.Helper()
		if _, err := s.AppendLogs(ctx, "a", "c1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte(line)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	inc(s1)
	inc(s2)
	inc(s1) // s1's known state is stale: s2 changed it
	appendOne(s2, "a")
	appendOne(s1, "b")
	appendOne(s2, "c")
	c, err := s2.GetContainer(ctx, "a", "c1")
	if err != nil || c.RestartCount != 3 || c.LogSeq != 3 {
		t.Fatalf("container %+v, %v; want 3 updates and 3 entries", c, err)
	}
	logs, err := s1.ReadLogs(ctx, "a", "c1", 0, 0)
	if err != nil || len(logs) != 3 || string(logs[0].Data)+string(logs[1].Data)+string(logs[2].Data) != "abc" {
		t.Fatalf("logs %+v, %v", logs, err)
	}
	inc(s2)
	if err := s1.DeleteContainer(ctx, "a", "c1"); err != nil { // stale too
		t.Fatal(err)
	}
	if _, err := s2.GetContainer(ctx, "a", "c1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s1.UpdateContainer(ctx, "a", "c1", func(*engine.Container) error { return nil }); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("update after delete: %v", err)
	}
	if err := s2.CreateContainer(ctx, storetest.NewContainer("a", "c2", "n1")); err != nil {
		t.Fatalf("the name was not freed: %v", err)
	}
}

// TestKnownNetworkGoneStale: as TestKnownStateGoneStale, for networks (a
// start adds an endpoint, an exit removes it, on the state read last).
func TestKnownNetworkGoneStale(t *testing.T) {
	ctx := t.Context()
	s1, root := openFresh(t)
	defer s1.Close()
	s2 := openTwin(t, root)
	if err := s1.CreateNetwork(ctx, storetest.NewNetwork("a", "n1", "net", "127.18.0.0/16")); err != nil {
		t.Fatal(err)
	}
	join := func(s *Store, id string) {
		t.Helper()
		if _, err := s.UpdateNetwork(ctx, "a", "n1", func(n *netplane.Network) error {
			if n.Endpoints == nil {
				n.Endpoints = map[string]*netplane.Endpoint{}
			}
			n.Endpoints[id] = &netplane.Endpoint{Container: id}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	join(s1, "c1")
	join(s2, "c2")
	join(s1, "c3") // s1's known state (its own write) lacks c2
	join(s2, "c4")
	if _, err := s1.UpdateNetwork(ctx, "a", "n1", func(n *netplane.Network) error {
		delete(n.Endpoints, "c1") // on a state that lacks c4
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n, err := s2.GetNetwork(ctx, "a", "n1")
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(n.Endpoints))
	if !slices.Equal(got, []string{"c2", "c3", "c4"}) {
		t.Fatalf("endpoints %v, want c2, c3 and c4", got)
	}
}

// TestRenamedByAnotherStore: a store that knows a container under its old
// name (the document it read or wrote last) still finds, changes, logs
// and removes it by ID after another store (control plane) renamed it,
// and of two stores renaming two containers to one name one conflicts.
func TestRenamedByAnotherStore(t *testing.T) {
	ctx := t.Context()
	s1, root := openFresh(t)
	defer s1.Close()
	s2 := openTwin(t, root)
	for _, c := range []*engine.Container{storetest.NewContainer("a", "c1", "old"), storetest.NewContainer("a", "c2", "other")} {
		if err := s1.CreateContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	rename := func(s *Store, id, name string) error {
		_, err := s.UpdateContainer(ctx, "a", id, func(c *engine.Container) error { c.Name = name; return nil })
		return err
	}
	if err := rename(s2, "c1", "new"); err != nil {
		t.Fatal(err)
	}
	if c, err := s1.GetContainer(ctx, "a", "c1"); err != nil || c.Name != "new" {
		t.Fatalf("by id after the other's rename: %+v, %v; want named new", c, err)
	}
	if err := rename(s2, "c1", "newer"); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.RestartCount = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := rename(s2, "c1", "newest"); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.AppendLogs(ctx, "a", "c1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("hi\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	c, err := s2.GetContainer(ctx, "a", "newest")
	if err != nil || c.ID != "c1" || c.RestartCount != 7 || c.LogSeq != 1 {
		t.Fatalf("by name on the renaming store: %+v, %v; want c1 with the other's change and entry", c, err)
	}
	errs := make(chan error, 2)
	go func() { errs <- rename(s1, "c1", "same") }()
	go func() { errs <- rename(s2, "c2", "same") }()
	e1, e2 := <-errs, <-errs
	if lost := cmp.Or(e1, e2); (e1 == nil) == (e2 == nil) || engine.KindOf(lost) != engine.KindConflict {
		t.Fatalf("racing renames to one name: %v and %v; want one conflict", e1, e2)
	}
	if err := rename(s2, "c1", "final"); err != nil { // s1's known name is stale again
		t.Fatal(err)
	}
	if err := s1.DeleteContainer(ctx, "a", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.GetContainer(ctx, "a", "c1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if cs, err := s2.ListContainers(ctx, "a"); err != nil || len(cs) != 1 || cs[0].ID != "c2" {
		t.Fatalf("left after delete: %+v, %v; want c2 alone", cs, err)
	}
}

// TestTagMovedByAnotherStore: a store that read a tag finds the image the
// tag names after another store moved it, and the one it named before by
// its ID.
func TestTagMovedByAnotherStore(t *testing.T) {
	ctx := t.Context()
	s1, root := openFresh(t)
	defer s1.Close()
	s2 := openTwin(t, root)
	id1, id2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	if err := s1.PutImage(ctx, &engine.Image{ID: id1, RepoTags: []string{"app:latest"}}); err != nil {
		t.Fatal(err)
	}
	get := func(s *Store, ref, want string) {
		t.Helper()
		img, err := s.GetImage(ctx, ref)
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		if img.ID != want {
			t.Fatalf("%s is %s, want %s", ref, img.ID, want)
		}
	}
	get(s1, "app:latest", id1)
	get(s1, "app:latest", id1)
	if err := s2.PutImage(ctx, &engine.Image{ID: id2, RepoTags: []string{"app:latest"}}); err != nil {
		t.Fatal(err)
	}
	get(s1, "app:latest", id2)
	get(s1, id1, id1)
	if err := s2.UntagImage(ctx, id2, "app:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.GetImage(ctx, "app:latest"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("untagged app:latest: %v, want not found", err)
	}
}
