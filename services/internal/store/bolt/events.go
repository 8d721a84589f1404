package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

// eventKey is an event's key in the events bucket: namespace, NUL, Key.
func eventKey(ns, key string) []byte { return []byte(ns + "\x00" + key) }

// AppendEvents stores events in one transaction.
func (s *Store) AppendEvents(ctx context.Context, evs []engine.StoredEvent) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bEvents)
		for _, ev := range evs {
			if err := putJSON(b, eventKey(ev.Namespace, ev.Key), ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadEvents returns ns's events after the key after, in key order.
func (s *Store) ReadEvents(ctx context.Context, ns, after string, limit int) ([]engine.StoredEvent, error) {
	var out []engine.StoredEvent
	prefix := []byte(ns + "\x00")
	from := eventKey(ns, after)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if bytes.Equal(k, from) {
				continue
			}
			var ev engine.StoredEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode event %q: %w", k, err)
			}
			out = append(out, ev)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// PruneEvents deletes ns's events before the key before.
func (s *Store) PruneEvents(ctx context.Context, ns, before string) error {
	prefix := []byte(ns + "\x00")
	end := eventKey(ns, before)
	return s.db.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, end) < 0; k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}
