package fleet_test

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// Hand-written fakes of the cloud-facing interfaces; the store is the real
// embedded one.
type fakeImages struct{}

func (fakeImages) Pull(context.Context, string) (*engine.Image, error) {
	return nil, errors.New("unused")
}
func (fakeImages) Wrap(context.Context, *engine.Image) (string, error) {
	return "reg/wrapped@sha256:1", nil
}

type fakeFunctions struct {
	creates atomic.Int64
}

func (f *fakeFunctions) Create(context.Context, string, string) (string, error) {
	f.creates.Add(1)
	return "http://fn", nil
}
func (f *fakeFunctions) Invoke(ctx context.Context, _ string, _ proto.Invocation) error {
	<-ctx.Done()
	return ctx.Err()
}

type silentAgents struct{}

func (silentAgents) Session(ctx context.Context, _ string) (engine.AgentSession, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (silentAgents) Connected(string) bool { return false }

// gcFunctions records deletions and reports invocations.
type gcFunctions struct {
	fakeFunctions
	mu        sync.Mutex
	deleted   []string
	deleteErr error
	invoked   chan string // receives each invocation's URL
}

func (f *gcFunctions) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.deleted = append(f.deleted, name)
	return nil
}

func (f *gcFunctions) Invoke(ctx context.Context, url string, inv proto.Invocation) error {
	if f.invoked != nil {
		f.invoked <- url
	}
	return f.fakeFunctions.Invoke(ctx, url, inv)
}

func (f *gcFunctions) deletedNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.deleted...)
	sort.Strings(out)
	return out
}

const gcScope = "proj/us-central1"

// imageHex is the test image's ID without "sha256:" (see newGCEngine).
var imageHex = strings.Repeat("cd", 32)

func newGCEngine(t *testing.T, fns engine.Functions, bootTimeout time.Duration) (*engine.Engine, *fleet.Fleet, engine.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutImage(context.Background(), &engine.Image{ID: "sha256:" + imageHex, RepoTags: []string{"busybox:latest"}, Config: &container.Config{Cmd: []string{"sh"}}}); err != nil {
		t.Fatal(err)
	}
	fl := fleet.New(fleet.Config{Store: st, Images: fakeImages{}, Functions: fns, Scope: gcScope})
	t.Cleanup(func() { fl.Close() })
	e := engine.New(engine.Config{Store: st, Images: fakeImages{}, Functions: fns, Fleet: fl, Agents: silentAgents{}, BootTimeout: bootTimeout, CallbackURL: "ws://hub"})
	t.Cleanup(func() { e.Close() })
	return e, fl, st
}

// seed stores function records: name → (status, age).
type seedFn struct {
	name   string
	status string
	age    time.Duration
	scope  string // default gcScope
}

func seed(t *testing.T, st engine.Store, fns []seedFn) {
	t.Helper()
	for _, f := range fns {
		scope := f.scope
		if scope == "" {
			scope = gcScope
		}
		key := "img-" + f.name + "@" + scope
		rec := &engine.Function{Key: key, Name: "sockerless-" + f.name, Status: f.status, URL: "https://" + f.name, Created: time.Now().UTC().Add(-f.age)}
		if _, err := st.UpdateFunction(context.Background(), key, func(*engine.Function) (*engine.Function, error) { return rec, nil }); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCollectFunctions(t *testing.T) {
	records := []seedFn{
		{name: "old", status: engine.FunctionReady, age: 72 * time.Hour},
		{name: "mid", status: engine.FunctionReady, age: 24 * time.Hour},
		{name: "new", status: engine.FunctionReady, age: time.Hour},
		{name: "broken", status: engine.FunctionFailed, age: 48 * time.Hour},
		{name: "creating", status: engine.FunctionCreating, age: time.Minute},
		{name: "stale", status: engine.FunctionCreating, age: time.Hour},
		{name: "gone", status: fleet.FunctionDeleted, age: 96 * time.Hour},
		{name: "otherproject", status: engine.FunctionReady, age: 96 * time.Hour, scope: "other/us-east1"},
	}
	tests := []struct {
		name        string
		opts        fleet.GCOptions
		wantDeleted []string // function names, sorted
		wantWould   []string // dry run
	}{
		{
			name:        "all deletes every function of this backend but one being created",
			opts:        fleet.GCOptions{All: true, Keep: -1},
			wantDeleted: []string{"sockerless-broken", "sockerless-mid", "sockerless-new", "sockerless-old", "sockerless-stale"},
		},
		{
			name:        "older than deletes old unused functions",
			opts:        fleet.GCOptions{OlderThan: 36 * time.Hour, Keep: -1},
			wantDeleted: []string{"sockerless-broken", "sockerless-old"},
		},
		{
			name:        "keep deletes all but the newest unused",
			opts:        fleet.GCOptions{Keep: 3}, // new, stale and mid stay
			wantDeleted: []string{"sockerless-broken", "sockerless-old"},
		},
		{
			name:        "keep zero deletes every unused one",
			opts:        fleet.GCOptions{Keep: 0},
			wantDeleted: []string{"sockerless-broken", "sockerless-mid", "sockerless-new", "sockerless-old", "sockerless-stale"},
		},
		{
			name:      "dry run deletes nothing",
			opts:      fleet.GCOptions{All: true, Keep: -1, DryRun: true},
			wantWould: []string{"sockerless-broken", "sockerless-mid", "sockerless-new", "sockerless-old", "sockerless-stale"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns := &gcFunctions{}
			_, fl, st := newGCEngine(t, fns, time.Second)
			seed(t, st, records)
			ctx := context.Background()
			res, err := fl.CollectFunctions(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := fns.deletedNames(); strings.Join(got, ",") != strings.Join(tt.wantDeleted, ",") {
				t.Fatalf("deleted %v, want %v", got, tt.wantDeleted)
			}
			var would, deleted []string
			for _, r := range res {
				switch r.Action {
				case fleet.GCWouldDelete:
					would = append(would, r.Name)
				case fleet.GCDeleted:
					deleted = append(deleted, r.Name)
				}
				if strings.Contains(r.Key, "other/") || r.Status == fleet.FunctionDeleted {
					t.Errorf("reported %s, which is not this backend's or is gone", r.Key)
				}
			}
			sort.Strings(would)
			sort.Strings(deleted)
			if strings.Join(would, ",") != strings.Join(tt.wantWould, ",") || strings.Join(deleted, ",") != strings.Join(tt.wantDeleted, ",") {
				t.Fatalf("report: would %v deleted %v", would, deleted)
			}
			for _, r := range res {
				if r.Action == fleet.GCDeleted {
					f, err := st.GetFunction(ctx, r.Key)
					if err != nil || f.Status != fleet.FunctionDeleted || f.URL != "" {
						t.Errorf("record %s after gc: %+v, %v", r.Key, f, err)
					}
				}
			}
			if other, err := st.GetFunction(ctx, "img-otherproject@other/us-east1"); err != nil || other.Status != engine.FunctionReady {
				t.Errorf("another backend's record changed: %+v, %v", other, err)
			}
		})
	}
}

func TestCollectFunctionsNeedsARule(t *testing.T) {
	_, fl, _ := newGCEngine(t, &gcFunctions{}, time.Second)
	_, err := fl.CollectFunctions(context.Background(), fleet.GCOptions{Keep: -1})
	if engine.KindOf(err) != engine.KindInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
}

func TestCollectFunctionsRestoresTheRecordWhenDeleteFails(t *testing.T) {
	fns := &gcFunctions{deleteErr: errors.New("permission denied")}
	_, fl, st := newGCEngine(t, fns, time.Second)
	seed(t, st, []seedFn{{name: "old", status: engine.FunctionReady, age: 72 * time.Hour}})
	res, err := fl.CollectFunctions(context.Background(), fleet.GCOptions{All: true, Keep: -1})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v", err)
	}
	if len(res) != 1 || res[0].Action != fleet.GCFailed {
		t.Fatalf("results %+v", res)
	}
	f, err := st.GetFunction(context.Background(), "img-old@"+gcScope)
	if err != nil || f.Status != engine.FunctionReady || f.URL != "https://old" {
		t.Fatalf("record %+v, %v: want it as it was", f, err)
	}
}

// startInBackground starts a new busybox container whose agent never calls
// back and returns the URL the engine invoked.
func startInBackground(t *testing.T, e *engine.Engine, fns *gcFunctions) string {
	t.Helper()
	ctx := context.Background()
	c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Config: &container.Config{Image: "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	go e.Start(ctx, "default", c.ID) //nolint:errcheck // ends when the boot timeout passes
	select {
	case url := <-fns.invoked:
		return url
	case <-time.After(10 * time.Second):
		t.Fatal("no invocation")
		return ""
	}
}

func TestCollectFunctionsSparesFunctionsInUseUnlessAll(t *testing.T) {
	fns := &gcFunctions{invoked: make(chan string, 4)}
	e, fl, st := newGCEngine(t, fns, 30*time.Second)
	ctx := context.Background()
	url := startInBackground(t, e, fns)
	key := "img-" + imageHex + "@" + gcScope
	f, err := st.GetFunction(ctx, key)
	if err != nil || f.URL != url {
		t.Fatalf("function %+v, %v; invoked %s", f, err, url)
	}

	res, err := fl.CollectFunctions(ctx, fleet.GCOptions{Keep: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Action != fleet.GCKept || res[0].Reason != "in use" || len(fns.deletedNames()) != 0 {
		t.Fatalf("gc of an unused-only rule: %+v, deleted %v", res, fns.deletedNames())
	}

	res, err = fl.CollectFunctions(ctx, fleet.GCOptions{All: true, Keep: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Action != fleet.GCDeleted || len(fns.deletedNames()) != 1 {
		t.Fatalf("gc all: %+v, deleted %v", res, fns.deletedNames())
	}
}

func TestDeletedFunctionIsCreatedAgainOnNextStart(t *testing.T) {
	fns := &gcFunctions{invoked: make(chan string, 4)}
	e, fl, _ := newGCEngine(t, fns, 200*time.Millisecond)
	startInBackground(t, e, fns)
	time.Sleep(400 * time.Millisecond) // the start gives up; its invocation ends
	if _, err := fl.CollectFunctions(context.Background(), fleet.GCOptions{Keep: 0}); err != nil {
		t.Fatal(err)
	}
	if len(fns.deletedNames()) != 1 {
		t.Fatalf("deleted %v, want the one unused function", fns.deletedNames())
	}
	before := fns.creates.Load()
	startInBackground(t, e, fns)
	if got := fns.creates.Load(); got != before+1 {
		t.Fatalf("Create called %d times after gc, want once", got-before)
	}
}
