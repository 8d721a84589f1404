package storetest

import (
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// RunUsage runs the contract checks of engine.UsageLedger; open returns a
// fresh, empty store each time and closes it at cleanup.
func RunUsage(t *testing.T, open func(t *testing.T) engine.UsageLedger) {
	t.Run("records are read per namespace since a time, in order of their end", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		recs := []engine.UsageRecord{
			{Namespace: "alice", Container: "c3", Name: "late", Started: base.Add(time.Hour), Ended: base.Add(2 * time.Hour)},
			{Namespace: "alice", Container: "c1", Name: "db", Started: base, Ended: base.Add(time.Minute)},
			{Namespace: "bob", Container: "c2", Name: "db", Started: base, Ended: base.Add(time.Minute)},
			{Namespace: "alice", Container: "c1", Name: "db", Started: base.Add(2 * time.Minute), Ended: base.Add(3 * time.Minute)},
		}
		for _, r := range recs {
			if err := s.AppendUsage(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.ReadUsage(ctx, "alice", time.Time{})
		if err != nil || len(all) != 3 || !all[0].Ended.Equal(base.Add(time.Minute)) || all[2].Container != "c3" || !all[2].Started.Equal(base.Add(time.Hour)) {
			t.Fatalf("alice's records: %+v, %v", all, err)
		}
		since, err := s.ReadUsage(ctx, "alice", base.Add(3*time.Minute))
		if err != nil || len(since) != 2 || since[0].Ended != base.Add(3*time.Minute) || since[1].Name != "late" {
			t.Fatalf("alice's records since 3m: %+v, %v", since, err)
		}
		if bob, err := s.ReadUsage(ctx, "bob", time.Time{}); err != nil || len(bob) != 1 || bob[0].Container != "c2" {
			t.Fatalf("bob's records: %+v, %v", bob, err)
		}
		if none, err := s.ReadUsage(ctx, "carol", time.Time{}); err != nil || len(none) != 0 {
			t.Fatalf("carol's records: %+v, %v", none, err)
		}
	})
}
