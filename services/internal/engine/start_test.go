package engine_test

import (
	"context"
	"errors"
	"path/filepath"
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

// Hand-written fakes of the engine's small cloud-facing interfaces; the
// store is the real embedded one.
type fakeImages struct{}

func (fakeImages) Pull(context.Context, string) (*engine.Image, error) {
	return nil, errors.New("unused")
}
func (fakeImages) Wrap(context.Context, *engine.Image) (string, error) {
	return "reg/wrapped@sha256:1", nil
}

type fakeFunctions struct {
	creates   atomic.Int64
	invokeErr error // returned at once by Invoke; nil blocks until ctx ends
	// onInvoke, if set, is told of each invocation as it is made.
	onInvoke func(proto.Invocation)

	mu      sync.Mutex
	secrets []string // the agent secrets of the invocations, in order
}

// secret returns the agent secret of the last invocation.
func (f *fakeFunctions) secret() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.secrets) == 0 {
		return ""
	}
	return f.secrets[len(f.secrets)-1]
}

func (f *fakeFunctions) Create(context.Context, string, string) (string, error) {
	f.creates.Add(1)
	return "http://fn", nil
}
func (f *fakeFunctions) Invoke(ctx context.Context, _ string, inv proto.Invocation) error {
	f.mu.Lock()
	f.secrets = append(f.secrets, inv.Secret)
	f.mu.Unlock()
	if f.onInvoke != nil {
		f.onInvoke(inv)
	}
	if f.invokeErr != nil {
		return f.invokeErr
	}
	<-ctx.Done()
	return ctx.Err()
}
func (f *fakeFunctions) Delete(context.Context, string) error { return nil }

// newWithFleet returns an engine on cfg with a fleet over cfg's store,
// images and functions; both close when the test ends.
func newWithFleet(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	fl := fleet.New(fleet.Config{Store: cfg.Store, Images: cfg.Images, Functions: cfg.Functions})
	t.Cleanup(func() { fl.Close() })
	cfg.Fleet = fl
	e := engine.New(cfg)
	t.Cleanup(func() { e.Close() })
	return e
}

type silentAgents struct{}

func (silentAgents) Session(ctx context.Context, _ string) (engine.AgentSession, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (silentAgents) Connected(string) bool { return false }

// boltWithBusybox opens an embedded store holding a busybox:latest image
// whose command is cmd; it closes when the test ends.
func boltWithBusybox(t *testing.T, cmd ...string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutImage(context.Background(), &engine.Image{ID: "sha256:" + strings.Repeat("cd", 32), RepoTags: []string{"busybox:latest"}, Config: &container.Config{Cmd: cmd}}); err != nil {
		t.Fatal(err)
	}
	return st
}

func newEngine(t *testing.T, fns *fakeFunctions) (*engine.Engine, engine.Store) {
	t.Helper()
	st := boltWithBusybox(t, "sh")
	e := newWithFleet(t, engine.Config{Store: st, Images: fakeImages{}, Functions: fns, Agents: silentAgents{}, BootTimeout: 300 * time.Millisecond, CallbackURL: "ws://hub"})
	t.Cleanup(func() { e.Close() })
	return e, st
}

func TestStartThatNeverRunsEndsExitedWithError(t *testing.T) {
	tests := []struct {
		name      string
		invokeErr error
		wantError string
		wantState string // in State.Error
	}{
		{"agent never calls back", nil, "agent did not call back within 300ms", "agent did not call back within 300ms"},
		{"instance fails to boot", errors.New("503 instance failed to start"), "function instance failed before its agent called back: 503 instance failed to start", "503 instance failed to start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns := &fakeFunctions{invokeErr: tt.invokeErr}
			e, _ := newEngine(t, fns)
			ctx := context.Background()
			c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "cc", Config: &container.Config{Image: "busybox"}})
			if err != nil {
				t.Fatal(err)
			}
			err = e.Start(ctx, "default", "cc")
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Fatalf("start err = %v, want %q", err, tt.wantError)
			}
			got, err := e.Container(ctx, "default", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State.Status != engine.StatusExited || !strings.Contains(got.State.Error, tt.wantState) || got.State.FinishedAt.IsZero() {
				t.Fatalf("state = %+v, want exited with the error", got.State)
			}
			res, err := e.Wait(ctx, "default", "cc", engine.WaitNotRunning, nil)
			if err != nil || res.StatusCode == 0 || res.Error == "" {
				t.Fatalf("wait = %+v, %v", res, err)
			}
		})
	}
}

// The agent of a start given up (it did not call back in time) is told,
// should it call back yet, that its instance is ended: by the time the
// client sees the failed start, not only once the invocation has ended;
// and after the container's removal too. A wrong secret is still only
// refused.
func TestGivenUpStartEndsItsAgent(t *testing.T) {
	fns := &fakeFunctions{}
	e, _ := newEngine(t, fns)
	ctx := context.Background()
	c, secret := givenUpStart(t, e, fns, "late")
	b := e.AgentBackend()
	if err := b.AuthorizeAgent(ctx, engine.AgentID(c), secret); !errors.Is(err, engine.ErrInstanceEnded) {
		t.Fatalf("the late agent's dial: %v, want %v", err, engine.ErrInstanceEnded)
	}
	if err := b.AuthorizeAgent(ctx, engine.AgentID(c), "guess"); engine.KindOf(err) != engine.KindUnauthorized {
		t.Fatalf("a wrong secret: %v, want unauthorized", err)
	}
	// Removed (as docker run --rm does), the container has no record to
	// hold the secret: its agent is ended all the same, as is one of a
	// container that never was: no record can ever authorize them.
	if err := e.Remove(ctx, "default", c.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := b.AuthorizeAgent(ctx, engine.AgentID(c), secret); !errors.Is(err, engine.ErrInstanceEnded) {
		t.Fatalf("the late agent of a removed container: %v, want %v", err, engine.ErrInstanceEnded)
	}
	if err := b.AuthorizeAgent(ctx, "default/"+strings.Repeat("ab", 32), secret); !errors.Is(err, engine.ErrInstanceEnded) {
		t.Fatalf("an agent of no container: %v, want %v", err, engine.ErrInstanceEnded)
	}
}

// The agent of a container another control plane removed (its record
// deleted in the shared store, not by this process) is told its instance
// is ended too, rather than refused and left dialing with its instance
// busy.
func TestAgentOfContainerRemovedElsewhereEnds(t *testing.T) {
	fns := &fakeFunctions{}
	e, st := newEngine(t, fns)
	ctx := context.Background()
	c, secret := givenUpStart(t, e, fns, "gone-elsewhere")
	if err := st.DeleteContainer(ctx, "default", c.ID); err != nil { // as another control plane's removal
		t.Fatal(err)
	}
	if err := e.AgentBackend().AuthorizeAgent(ctx, engine.AgentID(c), secret); !errors.Is(err, engine.ErrInstanceEnded) {
		t.Fatalf("the agent of a container removed elsewhere: %v, want %v", err, engine.ErrInstanceEnded)
	}
}

// givenUpStart creates container name and starts it on an agent that
// never calls back (the engine gives the start up), returning the
// container and the secret its instance's agent was given.
func givenUpStart(t *testing.T, e *engine.Engine, fns *fakeFunctions, name string) (*engine.Container, string) {
	t.Helper()
	ctx := context.Background()
	c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: name, Config: &container.Config{Image: "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "default", name); err == nil {
		t.Fatal("start whose agent never calls back succeeded")
	}
	secret := fns.secret()
	if secret == "" {
		t.Fatal("no invocation was made")
	}
	return c, secret
}

func TestCreateOfKnownImageMakesTheFunctionOnce(t *testing.T) {
	fns := &fakeFunctions{}
	e, st := newEngine(t, fns)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Config: &container.Config{Image: "busybox"}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fs, _ := st.ListFunctions(ctx)
		if len(fs) == 1 && fs[0].Status == engine.FunctionReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("functions = %v", fs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := fns.creates.Load(); n != 1 {
		t.Fatalf("Create called %d times for one image, want 1", n)
	}
}

// A create of a name another control plane moved, or took away, since
// this one last resolved it takes what the name gives now, and leaves no
// container of the image it gave before.
func TestCreateFollowsANameMovedInTheStore(t *testing.T) {
	e, st := newEngine(t, &fakeFunctions{})
	ctx := context.Background()
	first, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Config: &container.Config{Image: "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.ImageID != "sha256:"+strings.Repeat("cd", 32) {
		t.Fatalf("first create from %s", first.ImageID)
	}
	moved := "sha256:" + strings.Repeat("ef", 32)
	if err := st.PutImage(ctx, &engine.Image{ID: moved, RepoTags: []string{"busybox:latest"}, Config: &container.Config{Cmd: []string{"true"}}}); err != nil {
		t.Fatal(err)
	}
	c, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "after-move", Config: &container.Config{Image: "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ImageID != moved || len(c.Config.Cmd) != 1 || c.Config.Cmd[0] != "true" {
		t.Fatalf("created from %s with cmd %v, want %s's", c.ImageID, c.Config.Cmd, moved)
	}
	cs, err := st.ListContainers(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("%d containers after two creates, want 2", len(cs))
	}
	if err := st.UntagImage(ctx, moved, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "after-untag", Config: &container.Config{Image: "busybox"}}); engine.KindOf(err) != engine.KindNotFound {
		t.Fatalf("create of an untagged name: %v, want not found", err)
	}
	if cs, _ := st.ListContainers(ctx, "default"); len(cs) != 2 {
		t.Fatalf("%d containers after a refused create, want 2", len(cs))
	}
}
