package firestore

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"google.golang.org/grpc/codes"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

// exitWith is an exit update: the run ends with code.
func exitWith(code int) func(*engine.Container) error {
	return func(c *engine.Container) error {
		c.ExitedRun = c.Run
		c.State.Status, c.State.ExitCode = engine.StatusExited, code
		return nil
	}
}

// The exit of an --rm container and its removal are one commit: the
// container is gone for every process, and its last output and exit stay
// readable, here and on another process, for its followers and waiters.
// Where that would take more than one write, or this process knows no
// state of it, the exit is stored as by AppendLogsUpdate and the caller
// removes the container.
func TestAppendLogsRemove(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 60<<10)
	tests := []struct {
		name        string
		unknown     bool // created by another process: s knows no state
		entries     []engine.LogEntry
		remove      bool
		wantRemoved bool
	}{
		{"removed with its exit and last output", false, []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("bye\n")}}, true, true},
		{"removed with its exit alone", false, nil, true, true},
		{"kept when remove says no", false, []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("bye\n")}}, false, false},
		{"kept when this process knows no state of it", true, nil, true, false},
		{"kept when its output outgrows its document", false, []engine.LogEntry{{Stream: engine.Stdout, Data: big}, {Stream: engine.Stdout, Data: big}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s, root := openFresh(t)
			defer s.Close()
			other := openTwin(t, root)
			creator := s
			if tt.unknown {
				creator = other
			}
			if err := creator.CreateContainer(ctx, storetest.NewContainer("a", "c1", "one")); err != nil {
				t.Fatal(err)
			}
			if _, err := creator.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.Run = 1; return nil }); err != nil {
				t.Fatal(err)
			}
			_, w0 := s.Stats()
			_, c, removed, err := s.AppendLogsRemove(ctx, "a", "c1", tt.entries, nil, exitWith(3),
				func(c *engine.Container) bool { return tt.remove && c.State.ExitCode == 3 })
			if err != nil {
				t.Fatalf("AppendLogsRemove: %v", err)
			}
			if removed != tt.wantRemoved || c.State.ExitCode != 3 {
				t.Fatalf("removed %v with exit %d, want removed %v with exit 3", removed, c.State.ExitCode, tt.wantRemoved)
			}
			for _, st := range []*Store{s, other} {
				who := map[*Store]string{s: "this process", other: "another process"}[st]
				got, gerr := st.GetContainer(ctx, "a", "c1")
				logs, lerr := st.ReadLogs(ctx, "a", "c1", 0, 0)
				if lerr != nil {
					t.Fatalf("%s reads its logs: %v", who, lerr)
				}
				var out []byte
				for _, le := range logs {
					out = append(out, le.Data...)
				}
				var want []byte
				for _, le := range tt.entries {
					want = append(want, le.Data...)
				}
				if !bytes.Equal(out, want) {
					t.Fatalf("%s reads %d bytes of output, want %d", who, len(out), len(want))
				}
				fin, ferr := st.Removed(ctx, "a", "c1")
				if !tt.wantRemoved {
					if gerr != nil || got.State.ExitCode != 3 || !errors.Is(ferr, engine.ErrNotFound) {
						t.Fatalf("%s finds %v, %v (removed: %v), want it exited with 3 and not removed", who, got, gerr, ferr)
					}
					continue
				}
				if !errors.Is(gerr, engine.ErrNotFound) {
					t.Fatalf("%s still finds it: %v, %v", who, got, gerr)
				}
				if ferr != nil || fin.State.ExitCode != 3 {
					t.Fatalf("%s reads its final state %v, %v; want exit 3", who, fin, ferr)
				}
			}
			if tt.wantRemoved {
				if _, w1 := s.Stats(); w1-w0 != 2 {
					t.Fatalf("%d document writes, want 2 (the deletion and the final document, in one commit)", w1-w0)
				}
				// Its name is free again.
				if err := other.CreateContainer(ctx, storetest.NewContainer("a", "c2", "one")); err != nil {
					t.Fatalf("create of its name again: %v", err)
				}
				// A lookup or a change of it is not found, and needs no read.
				r0, _ := s.Stats()
				if _, err := s.GetContainer(ctx, "a", "c1"); !errors.Is(err, engine.ErrNotFound) {
					t.Fatalf("get after the removal: %v, want not found", err)
				}
				if _, err := s.UpdateContainer(ctx, "a", "c1", exitWith(4)); !errors.Is(err, engine.ErrNotFound) {
					t.Fatalf("update after the removal: %v, want not found", err)
				}
				if r1, _ := s.Stats(); r1 != r0 {
					t.Fatalf("a lookup and an update of a container removed here read %d documents", r1-r0)
				}
			}
		})
	}
}

// A removal with the exit whose answer is lost is decided by the final
// document: landed, it is done; not landed, the exit is stored alone.
func TestAppendLogsRemoveWithLostAnswer(t *testing.T) {
	for _, lost := range []struct {
		name        string
		applied     bool
		code        codes.Code
		wantRemoved bool
	}{
		{"after it landed (CANCELLED)", true, codes.Canceled, true},
		{"after it landed (UNAVAILABLE, which the client retries)", true, codes.Unavailable, true},
		{"before it landed (UNAVAILABLE: the client sends it again)", false, codes.Unavailable, true},
		{"before it landed (CANCELLED)", false, codes.Canceled, false},
	} {
		t.Run(lost.name, func(t *testing.T) {
			ctx := t.Context()
			loser := &answerLoser{applied: lost.applied, code: lost.code}
			s, other := openLosing(t, loser)
			if err := s.CreateContainer(ctx, storetest.NewContainer("a", "c1", "one")); err != nil {
				t.Fatal(err)
			}
			loser.armed.Store(true)
			_, _, removed, err := s.AppendLogsRemove(ctx, "a", "c1", nil, nil, exitWith(3), func(*engine.Container) bool { return true })
			if err != nil {
				t.Fatalf("AppendLogsRemove: %v", err)
			}
			if loser.armed.Load() {
				t.Fatal("no commit was made")
			}
			if removed != lost.wantRemoved {
				t.Fatalf("removed %v, want %v", removed, lost.wantRemoved)
			}
			got, gerr := other.GetContainer(ctx, "a", "c1")
			fin, ferr := other.Removed(ctx, "a", "c1")
			switch {
			case removed && (!errors.Is(gerr, engine.ErrNotFound) || ferr != nil || fin.State.ExitCode != 3):
				t.Fatalf("another process finds %v, %v, final %v, %v; want it gone with exit 3", got, gerr, fin, ferr)
			case !removed && (gerr != nil || got.State.ExitCode != 3 || !strings.Contains(ferr.Error(), "not found")):
				t.Fatalf("another process finds %v, %v, final %v; want it exited with 3, not removed", got, gerr, ferr)
			}
		})
	}
}

// ListPublishing finds the containers whose run binds host ports, as each
// kind of write leaves them, and reads those alone: a start's gateway view
// costs reads by the publishing containers, not by the namespace's.
func TestListPublishing(t *testing.T) {
	ctx := t.Context()
	s, root := openFresh(t)
	defer s.Close()
	other := openTwin(t, root)
	ports := network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}
	for _, id := range []string{"web", "quiet", "done"} {
		if err := s.CreateContainer(ctx, storetest.NewContainer("a", id, id)); err != nil {
			t.Fatal(err)
		}
	}
	publishing := func(st *Store) string {
		t.Helper()
		r0, _ := st.Stats()
		cs, err := st.ListPublishing(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		if r1, _ := st.Stats(); r1-r0 != int64(max(len(ids), 1)) {
			t.Fatalf("listed %v with %d reads", ids, r1-r0)
		}
		return strings.Join(ids, " ")
	}
	start := func(st *Store, id string, p network.PortMap) {
		t.Helper()
		if _, err := st.UpdateContainer(ctx, "a", id, func(c *engine.Container) error { c.Run++; c.Ports = p; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	start(s, "web", ports)      // a change of a known state
	start(other, "done", ports) // a change in a transaction
	start(s, "quiet", nil)
	if got := publishing(s); got != "done web" {
		t.Fatalf("publishing %q, want \"done web\"", got)
	}
	// The exit of one, with its output (AppendLogsUpdate).
	if _, _, err := s.AppendLogsUpdate(ctx, "a", "done", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("bye\n")}}, nil, exitWith(0)); err != nil {
		t.Fatal(err)
	}
	if got := publishing(other); got != "web" {
		t.Fatalf("publishing %q after an exit, want \"web\"", got)
	}
}
