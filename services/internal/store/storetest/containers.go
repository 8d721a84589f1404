package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/services/internal/engine"
)

func containerCases() []testCase {
	return []testCase{
		{"taken name conflicts, same name in another namespace is fine", testCreateConflicts},
		{"get finds by id, name and unique prefix within the namespace", testLookup},
		{"concurrent updates all apply", testUpdateAtomic},
		{"concurrent creates of one name: exactly one wins", testParallelCreate},
		{"failing update writes nothing", testUpdateAbort},
		{"rename frees the old name, a taken name conflicts", testRename},
		{"a renamed container is found by id, prefix and new name, and updated, logged and deleted by id", testRenamedLookups},
		{"update of a missing or foreign container is not found", testUpdateMissing},
		{"delete frees the name and drops the logs", testDelete},
		{"delete of a foreign container is not found and keeps it", testDeleteForeign},
		{"list is per namespace, newest first", testList},
		{"published ports and the client side are kept", testPortsKept},
	}
}

// testPortsKept: the client side a container was created through and
// the host ports its run published (chosen on the client's machine) come
// back as written, so a restarted control plane binds them again.
func testPortsKept(t *testing.T, s engine.Store) {
	c := NewContainer("a", "p0rt5", "web")
	c.Client = "fwd-0123456789abcdef"
	mustCreate(t, s, c)
	ports := network.PortMap{
		network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "32768"}, {HostIP: netip.MustParseAddr("::"), HostPort: "32768"}},
		network.MustParsePort("81/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "40001"}},
	}
	if _, err := s.UpdateContainer(t.Context(), "a", "p0rt5", func(c *engine.Container) error {
		c.Ports = ports
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetContainer(t.Context(), "a", "p0rt5")
	if err != nil {
		t.Fatal(err)
	}
	if got.Client != c.Client || !reflect.DeepEqual(got.Ports, ports) {
		t.Fatalf("read back client %q ports %v; want %q %v", got.Client, got.Ports, c.Client, ports)
	}
}

func testCreateConflicts(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "aaaa1111", "web"))
	tests := []struct {
		name string
		c    *engine.Container
		want *engine.Error
	}{
		{"same name same namespace conflicts", NewContainer("a", "aaaa2222", "web"), engine.ErrConflict},
		{"same name in another namespace is created", NewContainer("b", "bbbb1111", "web"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, s.CreateContainer(t.Context(), tt.c), tt.want)
		})
	}
	if c, err := s.GetContainer(t.Context(), "a", "web"); err != nil || c.ID != "aaaa1111" {
		t.Fatalf("after conflicts, a/web = %v, %v; want aaaa1111", c, err)
	}
}

func testLookup(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "abc123", "web"))
	mustCreate(t, s, NewContainer("a", "abd456", "db"))
	mustCreate(t, s, NewContainer("a", "f00", "abd"))
	mustCreate(t, s, NewContainer("b", "abe789", "web"))
	mustCreate(t, s, NewContainer("b", "ccc000", "solo"))
	tests := []struct {
		name, ns, ref, want string
		err                 *engine.Error
	}{
		{"full id finds it", "a", "abc123", "abc123", nil},
		{"name finds it", "a", "web", "abc123", nil},
		{"name with slash finds it", "a", "/web", "abc123", nil},
		{"unique prefix finds it", "a", "abc", "abc123", nil},
		{"name wins over prefix", "a", "abd", "f00", nil},
		{"same name in other namespace finds its own", "b", "web", "abe789", nil},
		{"prefix skips other namespaces", "b", "ab", "abe789", nil},
		{"ambiguous prefix is ambiguous", "a", "ab", "", engine.ErrAmbiguous},
		{"unknown is not found", "a", "zzz", "", engine.ErrNotFound},
		{"empty is not found", "a", "", "", engine.ErrNotFound},
		{"foreign id is not found", "a", "abe789", "", engine.ErrNotFound},
		{"foreign name is not found", "a", "solo", "", engine.ErrNotFound},
		{"foreign prefix is not found", "a", "ccc", "", engine.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.GetContainer(t.Context(), tt.ns, tt.ref)
			wantErr(t, err, tt.err)
			if tt.err == nil && (c == nil || c.ID != tt.want || c.Namespace != tt.ns) {
				t.Fatalf("GetContainer(%s, %q) = %+v; want %s", tt.ns, tt.ref, c, tt.want)
			}
		})
	}
}

func testUpdateAtomic(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.UpdateContainer(t.Context(), "a", "c1", func(c *engine.Container) error {
				c.RestartCount++
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c, err := s.GetContainer(t.Context(), "a", "c1")
	if err != nil || c.RestartCount != n {
		t.Fatalf("RestartCount = %+v, %v; want %d", c, err, n)
	}
}

func testParallelCreate(t *testing.T, s engine.Store) {
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	conflicts := 0
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("id%02d", i)
			err := s.CreateContainer(t.Context(), NewContainer("a", id, "same"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, id)
			case errors.Is(err, engine.ErrConflict) && engine.KindOf(err) == engine.KindConflict:
				conflicts++
			default:
				t.Errorf("create %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 || conflicts != n-1 {
		t.Fatalf("winners %v conflicts %d, want 1 and %d", winners, conflicts, n-1)
	}
	if c, err := s.GetContainer(t.Context(), "a", "same"); err != nil || c.ID != winners[0] {
		t.Fatalf("name points at %+v, %v; want the winner %s", c, err, winners[0])
	}
	if cs, err := s.ListContainers(t.Context(), "a"); err != nil || len(cs) != 1 {
		t.Fatalf("losers were stored: %d containers, %v", len(cs), err)
	}
}

func testUpdateAbort(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	boom := errors.New("boom")
	_, err := s.UpdateContainer(t.Context(), "a", "c1", func(c *engine.Container) error {
		c.State.Status = engine.StatusRunning
		c.Name = "renamed"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fn's error", err)
	}
	c, err := s.GetContainer(t.Context(), "a", "n1")
	if err != nil || c.State.Status != engine.StatusCreated || c.Name != "n1" {
		t.Fatalf("after an aborted update: %+v, %v", c, err)
	}
	// The aborted rename reserved nothing.
	mustCreate(t, s, NewContainer("a", "c2", "renamed"))
}

func testRename(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "old"))
	mustCreate(t, s, NewContainer("a", "c2", "taken"))
	_, err := s.UpdateContainer(t.Context(), "a", "c1", func(c *engine.Container) error { c.Name = "taken"; return nil })
	wantErr(t, err, engine.ErrConflict)
	got, err := s.UpdateContainer(t.Context(), "a", "c1", func(c *engine.Container) error { c.Name = "new"; return nil })
	if err != nil || got.Name != "new" {
		t.Fatalf("rename = %+v, %v", got, err)
	}
	if c, err := s.GetContainer(t.Context(), "a", "new"); err != nil || c.ID != "c1" {
		t.Fatalf("by new name: %+v, %v", c, err)
	}
	_, err = s.GetContainer(t.Context(), "a", "old")
	wantErr(t, err, engine.ErrNotFound)
	mustCreate(t, s, NewContainer("a", "c3", "old"))
}

func testRenamedLookups(t *testing.T, s engine.Store) {
	ctx := t.Context()
	mustCreate(t, s, NewContainer("a", "abc123", "old"))
	mustCreate(t, s, NewContainer("b", "abc999", "old")) // names are per namespace
	if _, err := s.AppendLogs(ctx, "a", "abc123", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("before\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateContainer(ctx, "a", "abc123", func(c *engine.Container) error { c.Name = "new"; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"abc123", "abc", "new", "/new"} {
		if c, err := s.GetContainer(ctx, "a", ref); err != nil || c.ID != "abc123" || c.Name != "new" {
			t.Fatalf("GetContainer(%q) after rename = %+v, %v; want abc123 named new", ref, c, err)
		}
	}
	_, err := s.GetContainer(ctx, "a", "old")
	wantErr(t, err, engine.ErrNotFound)
	if c, err := s.GetContainer(ctx, "b", "old"); err != nil || c.ID != "abc999" {
		t.Fatalf("b/old after a's rename = %+v, %v; want abc999", c, err)
	}
	if _, err := s.UpdateContainer(ctx, "a", "abc123", func(c *engine.Container) error { c.RestartCount = 4; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, "a", "abc123", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("after\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	logs, err := s.ReadLogs(ctx, "a", "abc123", 0, 0)
	if err != nil || len(logs) != 2 || string(logs[0].Data)+string(logs[1].Data) != "before\nafter\n" {
		t.Fatalf("logs across the rename = %+v, %v", logs, err)
	}
	if cs, err := s.ListContainers(ctx, "a"); err != nil || len(cs) != 1 || cs[0].Name != "new" || cs[0].RestartCount != 4 {
		t.Fatalf("list after rename = %+v, %v; want one container named new", cs, err)
	}
	wantErr(t, s.DeleteContainer(ctx, "a", "abc123"), nil)
	_, err = s.GetContainer(ctx, "a", "new")
	wantErr(t, err, engine.ErrNotFound)
	mustCreate(t, s, NewContainer("a", "def456", "new"))
	mustCreate(t, s, NewContainer("a", "fed654", "old"))
}

func testUpdateMissing(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("b", "c1", "n1"))
	for _, tt := range []struct{ name, ns, id string }{
		{"unknown id", "a", "nope"},
		{"other namespace", "a", "c1"},
		{"name instead of id", "b", "n1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			_, err := s.UpdateContainer(t.Context(), tt.ns, tt.id, func(*engine.Container) error { called = true; return nil })
			wantErr(t, err, engine.ErrNotFound)
			if called {
				t.Fatal("fn ran for a container that is not there")
			}
		})
	}
}

func testDelete(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	if _, err := s.AppendLogs(t.Context(), "a", "c1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("x")}}, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteContainer(t.Context(), "a", "c1"), nil)
	wantErr(t, s.DeleteContainer(t.Context(), "a", "c1"), engine.ErrNotFound)
	_, err := s.GetContainer(t.Context(), "a", "n1")
	wantErr(t, err, engine.ErrNotFound)
	if logs, err := s.ReadLogs(t.Context(), "a", "c1", 0, 0); len(logs) != 0 || (err != nil && !errors.Is(err, engine.ErrNotFound)) {
		t.Fatalf("logs of a deleted container: %v, %v; want none", logs, err)
	}
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	if logs, err := s.ReadLogs(t.Context(), "a", "c1", 0, 0); err != nil || len(logs) != 0 {
		t.Fatalf("logs of a re-created container: %v, %v", logs, err)
	}
	if got, err := s.AppendLogs(t.Context(), "a", "c1", []engine.LogEntry{{Stream: engine.Stdout}}, nil); err != nil || got[0].Seq != 1 {
		t.Fatalf("seq after re-create = %+v, %v; want 1", got, err)
	}
}

func testDeleteForeign(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("b", "c1", "n1"))
	wantErr(t, s.DeleteContainer(t.Context(), "a", "c1"), engine.ErrNotFound)
	if _, err := s.GetContainer(t.Context(), "b", "n1"); err != nil {
		t.Fatalf("foreign delete removed it: %v", err)
	}
}

func testList(t *testing.T, s engine.Store) {
	if cs, err := s.ListContainers(t.Context(), "a"); err != nil || len(cs) != 0 {
		t.Fatalf("empty store lists %v, %v", cs, err)
	}
	base := time.Now().UTC()
	for i, id := range []string{"c2", "c1", "c3"} { // IDs out of time order
		c := NewContainer("a", id, "n"+id)
		c.Created = base.Add(time.Duration(i) * time.Second)
		mustCreate(t, s, c)
	}
	mustCreate(t, s, NewContainer("b", "x1", "x"))
	cs, err := s.ListContainers(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if fmt.Sprint(ids) != "[c3 c1 c2]" {
		t.Fatalf("list = %v, want [c3 c1 c2]", ids)
	}
}
