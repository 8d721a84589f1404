package ttlcache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A caller that comes while a read of its key runs takes that read's
// result; one that gives up waiting is not held; after Forget a caller
// reads afresh.
func TestReads(t *testing.T) {
	var r Reads[int]
	var reads atomic.Int32
	gate := make(chan struct{})
	read := func() (int, error) {
		n := reads.Add(1)
		<-gate
		return int(n), nil
	}
	first := make(chan int)
	go func() {
		v, _ := r.Do(context.Background(), "k", read)
		first <- v
	}()
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Do(ctx, "k", read); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller whose wait ends: %v, want its context's error", err)
	}
	second := make(chan int)
	go func() {
		v, _ := r.Do(context.Background(), "k", read)
		second <- v
	}()
	time.Sleep(20 * time.Millisecond) // joined meanwhile
	close(gate)
	if a, b := <-first, <-second; a != 1 || b != 1 || reads.Load() != 1 {
		t.Fatalf("results %d and %d after %d reads, want one read for both", a, b, reads.Load())
	}
	r.Forget("k")
	if v, _ := r.Do(context.Background(), "k", read); v != 2 {
		t.Fatalf("after Forget: %d, want a new read", v)
	}
}
