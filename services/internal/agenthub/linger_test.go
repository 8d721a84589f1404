package agenthub

import (
	"slices"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// A process that prints and ends sends its exit a moment after its
// output: with a backend that lingers, the hub stores the two in one step;
// without, output first, then the exit, each on its own. Either way the
// output is stored before the exit.
func TestLingerJoinsOutputAndTheExitBehindIt(t *testing.T) {
	for _, tt := range []struct {
		name       string
		linger     time.Duration
		wantJoined int
	}{
		{"lingering backend", 2 * time.Second, 1},
		{"no linger", 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend(map[string]string{"c1": "s"})
			b.linger = tt.linger
			env := newTestEnv(t, b, nil)
			a := env.connect(t, "c1", 0)
			a.data(proto.StreamStdout, 1, "hi")
			if tt.linger > 0 {
				time.Sleep(50 * time.Millisecond) // the exit comes a moment after
			} else {
				a.until(proto.TypeAck) // the output is stored alone before the exit comes
			}
			a.control(proto.TypeExit, proto.Exit{Run: 1, Code: 0})
			a.until(proto.TypeExitAck)
			b.mu.Lock()
			joined := b.joined
			b.mu.Unlock()
			if joined != tt.wantJoined {
				t.Errorf("%d output+exit stores, want %d", joined, tt.wantJoined)
			}
			if got, want := b.eventList(), []string{"out 1 hi", "exit 1"}; !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
		})
	}
}
