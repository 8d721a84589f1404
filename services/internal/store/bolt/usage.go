package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

// Usage records live in bucket "usage" under "ns\x00END\x00container",
// END the end time in nanoseconds (20 digits), so a namespace's records
// since a time are one range.
var bUsage = []byte("usage")

var _ engine.UsageLedger = (*Store)(nil)

func usageKey(ns string, end time.Time, id string) []byte {
	return fmt.Appendf(nil, "%s\x00%020d\x00%s", ns, end.UnixNano(), id)
}

// AppendUsage stores a usage record.
func (s *Store) AppendUsage(ctx context.Context, r engine.UsageRecord) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bUsage)
		if err != nil {
			return err
		}
		return putJSON(b, usageKey(r.Namespace, r.Ended, r.Container), r)
	})
}

// ReadUsage returns the namespace's records that ended at or after since.
func (s *Store) ReadUsage(ctx context.Context, ns string, since time.Time) ([]engine.UsageRecord, error) {
	var out []engine.UsageRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, _ := bucket(tx, bUsage)
		if b == nil {
			return nil
		}
		prefix := []byte(ns + "\x00")
		from := usageKey(ns, since, "")
		if since.IsZero() {
			from = prefix
		}
		c := b.Cursor()
		for k, _ := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			r, err := getJSON[engine.UsageRecord](b, k)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return nil
	})
	return out, err
}
