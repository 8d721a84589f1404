package firestore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"cloud.google.com/go/firestore"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Events are stored in batches, one document per AppendEvents call and
// namespace (the engine writes them a few times a second at most), so a
// container's life adds a write or two, not one per event:
//
//	namespaces/{ns}/events/{first key}   first, last: the batch's key range;
//	                                     json: its []engine.StoredEvent
const colEvents = "events"

func (s *Store) eventsCol(ns string) *firestore.CollectionRef {
	return s.col(colNamespaces).Doc(docID(ns)).Collection(colEvents)
}

// eventBatch is one events document.
type eventBatch struct {
	First string `firestore:"first"`
	Last  string `firestore:"last"`
	JSON  []byte `firestore:"json"`
}

// AppendEvents writes one document per namespace of evs.
func (s *Store) AppendEvents(ctx context.Context, evs []engine.StoredEvent) error {
	byNS := map[string][]engine.StoredEvent{}
	for _, ev := range evs {
		byNS[ev.Namespace] = append(byNS[ev.Namespace], ev)
	}
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	for ns, batch := range byNS {
		if err := s.putEventBatch(ctx, ns, batch); err != nil {
			return err
		}
	}
	return nil
}

// putEventBatch writes batch (events of ns) as one document.
func (s *Store) putEventBatch(ctx context.Context, ns string, batch []engine.StoredEvent) error {
	sort.Slice(batch, func(i, j int) bool { return batch[i].Key < batch[j].Key })
	data, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encode events: %w", err)
	}
	doc := eventBatch{First: batch[0].Key, Last: batch[len(batch)-1].Key, JSON: data}
	if _, err := s.eventsCol(ns).Doc(docID(doc.First)).Set(ctx, doc); err != nil {
		return fmt.Errorf("store events of %s: %w", ns, err)
	}
	s.countWrites(1)
	s.eventWrites.Add(1)
	return nil
}

// ReadEvents reads the batches that end after after and returns their
// events after it, in key order (batches of several control planes may
// interleave).
func (s *Store) ReadEvents(ctx context.Context, ns, after string, limit int) ([]engine.StoredEvent, error) {
	var out []engine.StoredEvent
	err := s.query(ctx, s.eventsCol(ns).Where("last", ">", after).OrderBy("last", firestore.Asc),
		func(snap *firestore.DocumentSnapshot) (bool, error) {
			batch, err := decodeEvents(snap)
			if err != nil {
				return true, err
			}
			for _, ev := range batch {
				if ev.Key > after {
					out = append(out, ev)
				}
			}
			return false, nil
		})
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", ns, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// PruneEvents deletes batches that end before before and rewrites those
// that straddle it.
func (s *Store) PruneEvents(ctx context.Context, ns, before string) error {
	type change struct {
		ref  *firestore.DocumentRef
		keep []engine.StoredEvent
	}
	var changes []change
	err := s.query(ctx, s.eventsCol(ns).Where("first", "<", before), func(snap *firestore.DocumentSnapshot) (bool, error) {
		batch, err := decodeEvents(snap)
		if err != nil {
			return true, err
		}
		var keep []engine.StoredEvent
		for _, ev := range batch {
			if ev.Key >= before {
				keep = append(keep, ev)
			}
		}
		changes = append(changes, change{snap.Ref, keep})
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("prune events of %s: %w", ns, err)
	}
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	for _, c := range changes {
		// The rest first, under its own first key, then the old document.
		if len(c.keep) > 0 {
			if err := s.putEventBatch(wctx, ns, c.keep); err != nil {
				return err
			}
			if c.ref.ID == docID(c.keep[0].Key) {
				continue
			}
		}
		if _, err := c.ref.Delete(wctx); err != nil {
			return fmt.Errorf("prune events of %s: %w", ns, err)
		}
		s.countWrites(1)
		s.eventWrites.Add(1)
	}
	return nil
}

func decodeEvents(snap *firestore.DocumentSnapshot) ([]engine.StoredEvent, error) {
	var b eventBatch
	if err := snap.DataTo(&b); err != nil {
		return nil, fmt.Errorf("decode events %s: %w", snap.Ref.ID, err)
	}
	var evs []engine.StoredEvent
	if err := json.Unmarshal(b.JSON, &evs); err != nil {
		return nil, fmt.Errorf("decode events %s: %w", snap.Ref.ID, err)
	}
	return evs, nil
}
