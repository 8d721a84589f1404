package fleet_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// gatedStore holds every read of a function record until gate closes,
// and counts them.
type gatedStore struct {
	engine.Store
	reads atomic.Int32
	gate  chan struct{}
}

func (s *gatedStore) GetFunction(ctx context.Context, key string) (*engine.Function, error) {
	s.reads.Add(1)
	<-s.gate
	return s.Store.GetFunction(ctx, key)
}

// The start of a `docker run` (Acquire) comes while its create's read of
// the function record (Prepare) is on the way: it joins that read rather
// than making its own, on the path of the start.
func TestAcquireJoinsPreparesRead(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seed(t, st, []seedFn{{name: imageHex, status: engine.FunctionReady}})
	gs := &gatedStore{Store: st, gate: make(chan struct{})}
	fl := fleet.New(fleet.Config{Store: gs, Images: fakeImages{}, Functions: &gcFunctions{}, Scope: gcScope})
	t.Cleanup(func() { fl.Close() })
	img := &engine.Image{ID: "sha256:" + imageHex}

	fl.Prepare(img, engine.Shape{})
	for deadline := time.Now().Add(5 * time.Second); gs.reads.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Prepare read no function record")
		}
	}
	acquired := make(chan error, 1)
	go func() {
		l, err := fl.Acquire(context.Background(), img, engine.Shape{})
		if err == nil {
			l.Release()
		}
		acquired <- err
	}()
	select {
	case err := <-acquired:
		t.Fatalf("Acquire returned (%v) before the read it joins", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(gs.gate)
	if err := <-acquired; err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if n := gs.reads.Load(); n != 1 {
		t.Fatalf("the function record was read %d times, want once", n)
	}

	// A caller that gives up waiting on a joined read is not held by it.
	gs.gate = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := fl.Acquire(ctx, &engine.Image{ID: "sha256:" + imageHex[:60] + "ffff"}, engine.Shape{}); err == nil {
		t.Fatal("Acquire of an unread record answered while its read is held")
	}
	close(gs.gate)
}
