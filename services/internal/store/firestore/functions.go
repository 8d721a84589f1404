package firestore

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"

	"github.com/sockerless/sockerless/services/internal/engine"
)

func (s *Store) functionRef(key string) *firestore.DocumentRef {
	return s.col(colFunctions).Doc(docID(key))
}

// GetFunction returns the function with key.
func (s *Store) GetFunction(ctx context.Context, key string) (*engine.Function, error) {
	snap, err := s.getDoc(ctx, s.functionRef(key))
	if err != nil {
		return nil, fmt.Errorf("get function %s: %w", key, err)
	}
	f, err := decodeJSON[engine.Function](snap)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", key, err)
	}
	return f, nil
}

// UpdateFunction is a read-modify-write of one function record in a
// transaction; a new record is created with the precondition that none
// exists, so concurrent claims of a key create it once.
func (s *Store) UpdateFunction(ctx context.Context, key string, fn func(*engine.Function) (*engine.Function, error)) (*engine.Function, error) {
	defer s.lock(functionKey(key))()
	out, err := upsertJSON(s, ctx, s.functionRef(key), fn, func(f *engine.Function) { f.Key = key })
	if err != nil {
		return nil, unwrapFn(err, "update function %s", key)
	}
	return out, nil
}

// ListFunctions returns every function.
func (s *Store) ListFunctions(ctx context.Context) ([]*engine.Function, error) {
	var out []*engine.Function
	err := s.query(ctx, s.col(colFunctions).Query, func(snap *firestore.DocumentSnapshot) (bool, error) {
		f, err := decodeJSON[engine.Function](snap)
		if err != nil {
			return true, err
		}
		out = append(out, f)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return out, nil
}
