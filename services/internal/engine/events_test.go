package engine

import (
	"strings"
	"testing"
)

func TestEventProcess(t *testing.T) {
	tests := []struct{ key, want string }{
		{"00000000000000000042-ab12cd34-00000001", "ab12cd34"},
		{"00000000000000000042-ab12cd34-123456789", "ab12cd34"}, // the count outgrew its width
		{"00000000000000000042-with-dash-00000001", "with-dash"},
		{"00000000000000000042", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := eventProcess(tc.key); got != tc.want {
			t.Errorf("eventProcess(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// A run of --rm that exits and is removed before its Start finishes has
// one "start": the exit publishes it, and the Start that finishes after
// the removal publishes none (it used to, after "die").
func TestStartEventOnceWhenExitAndRemovalComeFirst(t *testing.T) {
	e := &Engine{startedRun: map[string]uint32{}, starting: map[string]uint32{}, events: newEventBus(), process: "p"}
	c := &Container{ID: "c1", Namespace: DefaultNamespace, Name: "short"}
	e.starting[c.ID] = 1 // Start sent the run to the agent
	e.publishStart(c, 1) // the hub stored its exit
	e.publish(c, "die", nil)
	e.forgetRuns(c.ID)   // --rm removed it
	e.publishStart(c, 1) // Start gets to its end
	e.publish(c, "destroy", nil)
	var actions []string
	for _, ev := range e.events.pending {
		actions = append(actions, string(ev.Message.Action))
	}
	if got := strings.Join(actions, " "); got != "start die destroy" {
		t.Fatalf("events %q, want \"start die destroy\"", got)
	}
}
