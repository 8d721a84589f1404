package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

func logCases() []testCase {
	return []testCase{
		{"append assigns seq and moves LogSeq and acks in one step", testAppendLogs},
		{"read returns entries after a seq, up to a limit", testReadLogs},
		{"entries round trip byte-exact with their time", testLogRoundTrip},
		{"append to a missing or foreign container is not found", testAppendMissing},
		{"append with an update is one step; a refused update stores nothing", testAppendLogsUpdate},
	}
}

// testAppendLogsUpdate: the last output of a run and its exit, stored
// together: both or neither.
func testAppendLogsUpdate(t *testing.T, s engine.Store) {
	ctx := t.Context()
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	refused := errors.New("refused")
	entry := []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("bye\n")}}
	if _, _, err := s.AppendLogsUpdate(ctx, "a", "c1", entry, map[uint32]uint64{1: 1}, func(*engine.Container) error { return refused }); err != refused {
		t.Fatalf("refused update: %v, want the update's error as is", err)
	}
	if c, err := s.GetContainer(ctx, "a", "c1"); err != nil || c.LogSeq != 0 || len(c.Acked) != 0 {
		t.Fatalf("a refused update stored the output: %+v, %v", c, err)
	}
	got, c, err := s.AppendLogsUpdate(ctx, "a", "c1", entry, map[uint32]uint64{1: 1}, func(c *engine.Container) error {
		c.ExitedRun = 1
		c.State.Status = engine.StatusExited
		return nil
	})
	if err != nil || len(got) != 1 || got[0].Seq != 1 || c == nil || c.ExitedRun != 1 || c.LogSeq != 1 {
		t.Fatalf("append with update = %+v, %+v, %v", got, c, err)
	}
	c, err = s.GetContainer(ctx, "a", "c1")
	if err != nil || c.ExitedRun != 1 || c.State.Status != engine.StatusExited || c.LogSeq != 1 || c.Acked[1] != 1 {
		t.Fatalf("stored %+v, %v", c, err)
	}
	logs, err := s.ReadLogs(ctx, "a", "c1", 0, 0)
	if err != nil || len(logs) != 1 || string(logs[0].Data) != "bye\n" {
		t.Fatalf("logs %+v, %v", logs, err)
	}
	if _, _, err := s.AppendLogsUpdate(ctx, "a", "missing", entry, nil, func(*engine.Container) error { return nil }); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("append with update to a missing container: %v", err)
	}
}

func testAppendLogs(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	steps := []struct {
		name      string
		entries   int
		acked     map[uint32]uint64
		wantFirst uint64
		wantSeq   uint64
		wantAcked map[uint32]uint64
	}{
		{"first batch starts at 1", 2, map[uint32]uint64{1: 5, 2: 3}, 1, 2, map[uint32]uint64{1: 5, 2: 3}},
		{"next batch continues, acks only grow", 1, map[uint32]uint64{1: 6, 2: 1}, 3, 3, map[uint32]uint64{1: 6, 2: 3}},
		{"acks alone move no seq", 0, map[uint32]uint64{7: 9}, 0, 3, map[uint32]uint64{1: 6, 2: 3, 7: 9}},
		{"entries without acks keep them", 2, nil, 4, 5, map[uint32]uint64{1: 6, 2: 3, 7: 9}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			in := make([]engine.LogEntry, st.entries)
			for i := range in {
				in[i] = engine.LogEntry{Stream: engine.Stdout, Seq: 999, Data: []byte("x")}
			}
			got, err := s.AppendLogs(t.Context(), "a", "c1", in, st.acked)
			if err != nil || len(got) != st.entries {
				t.Fatalf("append = %+v, %v", got, err)
			}
			for i, e := range got {
				if e.Seq != st.wantFirst+uint64(i) {
					t.Fatalf("entry %d has seq %d, want %d", i, e.Seq, st.wantFirst+uint64(i))
				}
			}
			c, err := s.GetContainer(t.Context(), "a", "c1")
			if err != nil {
				t.Fatal(err)
			}
			if c.LogSeq != st.wantSeq || len(c.Acked) != len(st.wantAcked) {
				t.Fatalf("LogSeq %d Acked %v, want %d and %v", c.LogSeq, c.Acked, st.wantSeq, st.wantAcked)
			}
			for k, v := range st.wantAcked {
				if c.Acked[k] != v {
					t.Fatalf("Acked %v, want %v", c.Acked, st.wantAcked)
				}
			}
		})
	}
}

func testReadLogs(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	in := make([]engine.LogEntry, 5)
	for i := range in {
		in[i] = engine.LogEntry{Stream: engine.Stdout, Data: []byte{byte('a' + i)}}
	}
	if _, err := s.AppendLogs(t.Context(), "a", "c1", in, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		after        uint64
		limit        int
		want         string
		wantFirstSeq uint64
	}{
		{"all with no limit", 0, 0, "abcde", 1},
		{"negative limit is no limit", 0, -1, "abcde", 1},
		{"after skips", 2, 0, "cde", 3},
		{"limit cuts", 0, 2, "ab", 1},
		{"after and limit page", 1, 2, "bc", 2},
		{"after the last is empty", 5, 0, "", 0},
		{"far after is empty", 1 << 40, 10, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ReadLogs(t.Context(), "a", "c1", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var data []byte
			for i, e := range got {
				data = append(data, e.Data...)
				if e.Seq != tt.wantFirstSeq+uint64(i) {
					t.Fatalf("entry %d seq %d, want %d", i, e.Seq, tt.wantFirstSeq+uint64(i))
				}
			}
			if string(data) != tt.want {
				t.Fatalf("read(after %d, limit %d) = %q, want %q", tt.after, tt.limit, data, tt.want)
			}
		})
	}
}

func testLogRoundTrip(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	binary := make([]byte, 256*1024)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	in := []engine.LogEntry{
		{Stream: engine.Stdout, Time: at, Data: []byte("one\n")},
		{Stream: engine.Stderr, Time: at.Add(time.Nanosecond), Data: binary},
		{Stream: 17, Time: at, Data: nil},
	}
	if _, err := s.AppendLogs(t.Context(), "a", "c1", in, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadLogs(t.Context(), "a", "c1", 0, 0)
	if err != nil || len(got) != len(in) {
		t.Fatalf("read = %d entries, %v", len(got), err)
	}
	for i, e := range got {
		w := in[i]
		if e.Stream != w.Stream || !e.Time.Equal(w.Time) || !bytes.Equal(e.Data, w.Data) {
			t.Fatalf("entry %d: stream %d time %v %d bytes; want stream %d time %v %d bytes",
				i, e.Stream, e.Time, len(e.Data), w.Stream, w.Time, len(w.Data))
		}
	}
}

func testAppendMissing(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("b", "c1", "n1"))
	for _, tt := range []struct{ name, ns, id string }{
		{"unknown id", "a", "gone"},
		{"other namespace", "a", "c1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.AppendLogs(t.Context(), tt.ns, tt.id, []engine.LogEntry{{Stream: engine.Stdout}}, nil)
			wantErr(t, err, engine.ErrNotFound)
		})
	}
	if logs, err := s.ReadLogs(t.Context(), "b", "c1", 0, 0); err != nil || len(logs) != 0 {
		t.Fatalf("a refused append stored %v, %v", logs, err)
	}
}
