package firestore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Usage records are documents namespaces/{ns}/usage/{END-container}, END
// the end time in nanoseconds (20 digits): a namespace's records since a
// time are one range of document IDs.
const colUsage = "usage"

var _ engine.UsageLedger = (*Store)(nil)

func (s *Store) usageCol(ns string) *firestore.CollectionRef {
	return s.col(colNamespaces).Doc(docID(ns)).Collection(colUsage)
}

func usageID(end time.Time, id string) string {
	return docID(fmt.Sprintf("%020d-%s", end.UnixNano(), id))
}

// AppendUsage stores a usage record.
func (s *Store) AppendUsage(ctx context.Context, r engine.UsageRecord) error {
	d, err := encodeJSON(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	if _, err := s.usageCol(r.Namespace).Doc(usageID(r.Ended, r.Container)).Set(ctx, d); err != nil {
		return fmt.Errorf("store usage of %s: %w", r.Container, err)
	}
	s.countWrites(1)
	return nil
}

// ReadUsage returns the namespace's records that ended at or after since.
func (s *Store) ReadUsage(ctx context.Context, ns string, since time.Time) ([]engine.UsageRecord, error) {
	var out []engine.UsageRecord
	q := s.usageCol(ns).OrderBy(firestore.DocumentID, firestore.Asc)
	if !since.IsZero() {
		q = q.Where(firestore.DocumentID, ">=", s.usageCol(ns).Doc(usageID(since, "")))
	}
	err := s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		r, err := decodeJSON[engine.UsageRecord](snap)
		if err != nil {
			return true, err
		}
		out = append(out, *r)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read usage of %s: %w", ns, err)
	}
	return out, nil
}
