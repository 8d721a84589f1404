package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// concurrencyCases race several goroutines on one record: a store must
// serialise them (bolt by its single writer, Firestore by transactions
// with preconditions) without losing or duplicating anything.
func concurrencyCases() []testCase {
	return []testCase{
		{"racing creates of one name in two namespaces: one winner each", testRaceCreateName},
		{"racing increments all count", testRaceIncrement},
		{"racing appends get distinct contiguous seqs", testRaceAppend},
		{"racing appends and updates lose neither", testRaceAppendUpdate},
		{"racing renames to one name: one winner", testRaceRename},
	}
}

// race runs fn(i) for i in [0, n) at once and returns the errors by i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one err is nil and the rest are conflicts,
// and returns the winner's index.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("both %d and %d won", winner, i)
		case !errors.Is(err, engine.ErrConflict) || engine.KindOf(err) != engine.KindConflict:
			t.Fatalf("racer %d: %v, want a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no racer won: %v", errs)
	}
	return winner
}

func testRaceCreateName(t *testing.T, s engine.Store) {
	const n = 12
	for _, ns := range []string{"a", "b"} {
		t.Run("namespace "+ns, func(t *testing.T) {
			errs := race(n, func(i int) error {
				return s.CreateContainer(t.Context(), NewContainer(ns, fmt.Sprintf("%s-id%02d", ns, i), "dup"))
			})
			w := oneWinner(t, errs)
			c, err := s.GetContainer(t.Context(), ns, "dup")
			if err != nil || c.ID != fmt.Sprintf("%s-id%02d", ns, w) {
				t.Fatalf("dup is %+v, %v; want the winner %d", c, err, w)
			}
			if cs, err := s.ListContainers(t.Context(), ns); err != nil || len(cs) != 1 {
				t.Fatalf("%d containers stored, %v; want 1", len(cs), err)
			}
		})
	}
}

func testRaceIncrement(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	const n = 16
	calls := make([]int, n)
	errs := race(n, func(i int) error {
		_, err := s.UpdateContainer(t.Context(), "a", "c1", func(c *engine.Container) error {
			calls[i]++
			c.RestartCount++
			return nil
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if calls[i] < 1 {
			t.Fatalf("fn of update %d never ran", i)
		}
	}
	if c, err := s.GetContainer(t.Context(), "a", "c1"); err != nil || c.RestartCount != n {
		t.Fatalf("RestartCount = %+v, %v; want %d", c, err, n)
	}
}

// appendEach appends k entries tagged with racer i and acks stream i+1.
func appendEach(t *testing.T, s engine.Store, i, k int) ([]engine.LogEntry, error) {
	in := make([]engine.LogEntry, k)
	for j := range in {
		in[j] = engine.LogEntry{Stream: engine.Stdout, Data: fmt.Appendf(nil, "%d.%d", i, j)}
	}
	return s.AppendLogs(t.Context(), "a", "c1", in, map[uint32]uint64{uint32(i + 1): uint64(k)})
}

func testRaceAppend(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	const n, k = 10, 3
	got := make([][]engine.LogEntry, n)
	errs := race(n, func(i int) error {
		var err error
		got[i], err = appendEach(t, s, i, k)
		return err
	})
	bySeq := map[uint64]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		for j, e := range got[i] {
			if j > 0 && e.Seq != got[i][j-1].Seq+1 {
				t.Fatalf("racer %d's batch is not contiguous: %+v", i, got[i])
			}
			if prev, dup := bySeq[e.Seq]; dup {
				t.Fatalf("seq %d given to %q and %q", e.Seq, prev, e.Data)
			}
			bySeq[e.Seq] = string(e.Data)
		}
	}
	logs, err := s.ReadLogs(t.Context(), "a", "c1", 0, 0)
	if err != nil || len(logs) != n*k {
		t.Fatalf("read %d entries, %v; want %d", len(logs), err, n*k)
	}
	for i, e := range logs {
		if e.Seq != uint64(i+1) || string(e.Data) != bySeq[e.Seq] {
			t.Fatalf("entry %d = seq %d %q; want seq %d %q", i, e.Seq, e.Data, i+1, bySeq[uint64(i+1)])
		}
	}
	c, err := s.GetContainer(t.Context(), "a", "c1")
	if err != nil || c.LogSeq != n*k || len(c.Acked) != n {
		t.Fatalf("container %+v, %v; want LogSeq %d and %d acks", c, err, n*k, n)
	}
}

func testRaceAppendUpdate(t *testing.T, s engine.Store) {
	mustCreate(t, s, NewContainer("a", "c1", "n1"))
	const n = 12 // half append, half update
	errs := race(n, func(i int) error {
		if i%2 == 0 {
			_, err := appendEach(t, s, i, 1)
			return err
		}
		_, err := s.UpdateContainer(t.Context(), "a", "c1", func(c *engine.Container) error {
			c.RestartCount++
			return nil
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	c, err := s.GetContainer(t.Context(), "a", "c1")
	if err != nil || c.RestartCount != n/2 || c.LogSeq != n/2 || len(c.Acked) != n/2 {
		t.Fatalf("container %+v, %v; want %d updates, %d entries and acks", c, err, n/2, n/2)
	}
	if logs, err := s.ReadLogs(t.Context(), "a", "c1", 0, 0); err != nil || len(logs) != n/2 {
		t.Fatalf("read %d entries, %v; want %d", len(logs), err, n/2)
	}
}

func testRaceRename(t *testing.T, s engine.Store) {
	const n = 8
	for i := range n {
		mustCreate(t, s, NewContainer("a", fmt.Sprintf("c%d", i), fmt.Sprintf("n%d", i)))
	}
	errs := race(n, func(i int) error {
		_, err := s.UpdateContainer(t.Context(), "a", fmt.Sprintf("c%d", i), func(c *engine.Container) error {
			c.Name = "target"
			return nil
		})
		return err
	})
	w := oneWinner(t, errs)
	if c, err := s.GetContainer(t.Context(), "a", "target"); err != nil || c.ID != fmt.Sprintf("c%d", w) {
		t.Fatalf("target is %+v, %v; want c%d", c, err, w)
	}
	cs, err := s.ListContainers(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	want := []string{"target"}
	for i := range n {
		if i != w {
			want = append(want, fmt.Sprintf("n%d", i))
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	// The winner's old name is free again.
	mustCreate(t, s, NewContainer("a", "fresh", fmt.Sprintf("n%d", w)))
}
