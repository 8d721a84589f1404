package instance

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// fakeSink records Data and opens its window only when told to.
type fakeSink struct {
	mu      sync.Mutex
	open    chan struct{} // one receive per WaitWindow that may pass
	frames  [][]byte
	times   []time.Time
	streams []uint32
}

func (f *fakeSink) WaitWindow(ctx context.Context, stream uint32) error {
	select {
	case <-f.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeSink) Data(stream uint32, p []byte, t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frames = append(f.frames, p)
	f.times = append(f.times, t)
	f.streams = append(f.streams, stream)
}

func (f *fakeSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames)
}

// countingReader counts Read calls.
type countingReader struct {
	mu    sync.Mutex
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.r.Read(p)
}

func (c *countingReader) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func TestPumpReadsOnlyWithinTheWindow(t *testing.T) {
	data := strings.Repeat("a", proto.MaxPayload) + strings.Repeat("b", 10)
	src := &countingReader{r: strings.NewReader(data)}
	sink := &fakeSink{open: make(chan struct{})}
	var copyTo bytes.Buffer
	done := make(chan struct{})
	before := time.Now()
	go func() {
		pump(context.Background(), sink, proto.StreamStderr, src, &copyTo, slog.New(slog.DiscardHandler), nil)
		close(done)
	}()

	time.Sleep(50 * time.Millisecond)
	if n := src.count(); n != 0 {
		t.Fatalf("read %d times with a closed window", n)
	}
	sink.open <- struct{}{}
	waitUntil(t, func() bool { return sink.count() == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := src.count(); n != 1 {
		t.Fatalf("read %d times after one window opening, want 1", n)
	}
	sink.open <- struct{}{} // the 10 b's
	sink.open <- struct{}{} // EOF
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pump did not stop at EOF")
	}
	if len(sink.frames) != 2 || len(sink.frames[0]) != proto.MaxPayload || string(sink.frames[1]) != strings.Repeat("b", 10) {
		t.Fatalf("frames of sizes %d", len(sink.frames))
	}
	for i, st := range sink.streams {
		if st != proto.StreamStderr || sink.times[i].Before(before) {
			t.Fatalf("frame %d stream %d time %v", i, st, sink.times[i])
		}
	}
	if copyTo.String() != data {
		t.Fatalf("copy has %d bytes, want %d", copyTo.Len(), len(data))
	}
}

func TestPumpStopsWhenCanceled(t *testing.T) {
	sink := &fakeSink{open: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		pump(ctx, sink, proto.StreamStdout, strings.NewReader("x"), io.Discard, slog.New(slog.DiscardHandler), nil)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pump did not stop when its context ended")
	}
	if sink.count() != 0 {
		t.Fatal("pump sent data without a window")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
