package fleet_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// poolFunctions is a backend with a pool: it records what is made and
// set.
type poolFunctions struct {
	mu      sync.Mutex
	stubs   []string
	images  map[string]string // function → image
	options map[string]fleet.ImageOptions
	creates int // Create calls (never, with a Pooler)
}

func (f *poolFunctions) Create(context.Context, string, string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	return "", nil
}
func (f *poolFunctions) Invoke(ctx context.Context, _ string, _ proto.Invocation) error {
	<-ctx.Done()
	return ctx.Err()
}
func (f *poolFunctions) Delete(context.Context, string) error { return nil }
func (f *poolFunctions) CreateStub(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stubs = append(f.stubs, name)
	return nil
}
func (f *poolFunctions) SetImage(_ context.Context, name, image string, opts fleet.ImageOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[name], f.options[name] = image, opts
	return "http://" + name, nil
}
func (f *poolFunctions) made() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stubs)
}

func poolFleet(t *testing.T, size int, prewarm func(*engine.Image) bool) (*fleet.Fleet, *poolFunctions) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fns := &poolFunctions{images: map[string]string{}, options: map[string]fleet.ImageOptions{}}
	fl := fleet.New(fleet.Config{Store: st, Images: fakeImages{}, Functions: fns, PoolSize: size, Scope: "test", Prewarm: prewarm})
	t.Cleanup(func() { fl.Close() })
	return fl, fns
}

func awaitReady(t *testing.T, fl *fleet.Fleet, want int) fleet.PoolStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := fl.PoolStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool %+v, want %d ready", st, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoolFillsClaimsAndRefills(t *testing.T) {
	fl, fns := poolFleet(t, 2, nil)
	awaitReady(t, fl, 2)
	img := &engine.Image{ID: "sha256:" + strings.Repeat("a1", 32)}
	shape := engine.Shape{CPU: "2", Memory: "1024Mi"}
	l, err := fl.Acquire(context.Background(), img, shape)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	name := strings.TrimPrefix(l.URL(), "http://")
	if !strings.Contains(name, "-pool-") {
		t.Fatalf("the image's function is %s, not a pooled stub", name)
	}
	if got := fns.options[name]; got.CPU != "2" || got.Memory != "1024Mi" || got.MinInstances != 0 {
		t.Fatalf("the stub took options %+v, want the container's shape", got)
	}
	st := awaitReady(t, fl, 2)
	if st.Claimed != 1 || fns.made() != 3 || fns.creates != 0 {
		t.Fatalf("pool %+v after a claim, %d stubs made, %d Create calls: want one claimed and one refill", st, fns.made(), fns.creates)
	}
}

func TestEmptyPoolMakesTheFunctionItselfWithPrewarm(t *testing.T) {
	prewarm := func(img *engine.Image) bool { return strings.HasPrefix(img.ID, "sha256:b2") }
	fl, fns := poolFleet(t, 0, prewarm)
	img := &engine.Image{ID: "sha256:" + strings.Repeat("b2", 32)}
	l, err := fl.Acquire(context.Background(), img, engine.Shape{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	name := strings.TrimPrefix(l.URL(), "http://")
	if strings.Contains(name, "-pool-") || fns.made() != 1 {
		t.Fatalf("function %s, %d stubs: want the image's own, made once", name, fns.made())
	}
	if fns.options[name].MinInstances != 1 {
		t.Fatalf("options %+v: the prewarmed image wants min instances 1", fns.options[name])
	}
}
