package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

// GetFunction returns the function with key.
func (s *Store) GetFunction(ctx context.Context, key string) (*engine.Function, error) {
	var f *engine.Function
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		f, err = getJSON[engine.Function](tx.Bucket(bFunctions), []byte(key))
		return err
	})
	return f, err
}

// UpdateFunction is a read-modify-write of one function record.
func (s *Store) UpdateFunction(ctx context.Context, key string, fn func(*engine.Function) (*engine.Function, error)) (*engine.Function, error) {
	var out *engine.Function
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, err = upsertJSON(tx.Bucket(bFunctions), []byte(key), fn, func(f *engine.Function) { f.Key = key })
		return err
	})
	return out, err
}

// ListFunctions returns every function.
func (s *Store) ListFunctions(ctx context.Context) ([]*engine.Function, error) {
	var out []*engine.Function
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bFunctions).ForEach(func(k, v []byte) error {
			var f engine.Function
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("decode function %s: %w", k, err)
			}
			out = append(out, &f)
			return nil
		})
	})
	return out, err
}
