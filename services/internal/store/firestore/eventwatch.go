package firestore

import (
	"context"
	"fmt"
	"sort"

	"cloud.google.com/go/firestore"
	"github.com/sockerless/sockerless/services/internal/engine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var _ engine.EventWatcher = (*Store)(nil)

// WatchEvents follows namespace ns's event batches that end after after
// with a real-time listener (a query's snapshots), and calls fn with the
// events after after of each batch added or rewritten.
func (s *Store) WatchEvents(ctx context.Context, ns, after string, fn func([]engine.StoredEvent)) error {
	it := s.eventsCol(ns).Where("last", ">", after).Snapshots(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || status.Code(err) == codes.Canceled {
				return nil
			}
			return fmt.Errorf("watch events of %s: %w", ns, err)
		}
		var evs []engine.StoredEvent
		for _, ch := range snap.Changes {
			if ch.Kind == firestore.DocumentRemoved {
				continue
			}
			s.countReads(1)
			batch, err := decodeEvents(ch.Doc)
			if err != nil {
				return fmt.Errorf("watch events of %s: %w", ns, err)
			}
			for _, ev := range batch {
				if ev.Key > after {
					evs = append(evs, ev)
				}
			}
		}
		if len(evs) > 0 {
			sort.Slice(evs, func(i, j int) bool { return evs[i].Key < evs[j].Key })
			fn(evs)
		}
	}
}
