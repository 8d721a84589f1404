package bolt

import (
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Appends between other updates of a container keep what those wrote
// (the cached decoding of the record is used only while it is current),
// and appends of another namespace are refused.
func TestAppendsBetweenUpdates(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &engine.Container{ID: "c1", Name: "one", Namespace: "ns", Config: &container.Config{}, HostConfig: &container.HostConfig{}}
	if err := s.CreateContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	line := []engine.LogEntry{{Stream: 1, Time: time.Now(), Data: []byte("tick\n")}}
	steps := []struct {
		name   string
		update func(*engine.Container) error // before the append, if set
		acked  map[uint32]uint64
		want   engine.Container // the fields compared
	}{
		{"first append", nil, map[uint32]uint64{1: 1}, engine.Container{LogSeq: 1, LogBytes: 5, Acked: map[uint32]uint64{1: 1}}},
		{"append after append", nil, map[uint32]uint64{1: 2}, engine.Container{LogSeq: 2, LogBytes: 10, Acked: map[uint32]uint64{1: 2}}},
		{"append after a restart cleared the acks", func(c *engine.Container) error { c.RestartCount++; c.Acked = nil; return nil },
			map[uint32]uint64{1: 1}, engine.Container{RestartCount: 1, LogSeq: 3, LogBytes: 15, Acked: map[uint32]uint64{1: 1}}},
		{"append after append again", nil, map[uint32]uint64{2: 4}, engine.Container{RestartCount: 1, LogSeq: 4, LogBytes: 20, Acked: map[uint32]uint64{1: 1, 2: 4}}},
	}
	for _, st := range steps {
		if st.update != nil {
			if _, err := s.UpdateContainer(ctx, "ns", "c1", st.update); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.AppendLogs(ctx, "ns", "c1", line, st.acked); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.GetContainer(ctx, "ns", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.RestartCount != st.want.RestartCount || got.LogSeq != st.want.LogSeq || got.LogBytes != st.want.LogBytes || !maps.Equal(got.Acked, st.want.Acked) {
			t.Errorf("%s: restarts %d, LogSeq %d, LogBytes %d, acked %v; want %d, %d, %d, %v", st.name,
				got.RestartCount, got.LogSeq, got.LogBytes, got.Acked, st.want.RestartCount, st.want.LogSeq, st.want.LogBytes, st.want.Acked)
		}
	}
	if _, err := s.AppendLogs(ctx, "other", "c1", line, nil); err == nil {
		t.Error("append through another namespace accepted")
	}
}
