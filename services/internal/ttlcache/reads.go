package ttlcache

import (
	"context"

	"golang.org/x/sync/singleflight"
)

// Reads joins the store reads of a key under way: a caller that comes
// while one runs takes its result rather than reading again (the start of
// a `docker run` comes while its create's read is on the way). The zero
// value is ready to use.
type Reads[V any] struct {
	g singleflight.Group
}

// Do returns read's result for key, from a read under way if there is
// one. read runs detached from ctx (another caller may join it); ctx
// bounds only this caller's wait.
func (r *Reads[V]) Do(ctx context.Context, key string, read func() (V, error)) (V, error) {
	ch := r.g.DoChan(key, func() (any, error) { return read() })
	select {
	case res := <-ch:
		if res.Err != nil {
			var zero V
			return zero, res.Err
		}
		return res.Val.(V), nil
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// Forget makes later callers of key read afresh: the record changed,
// and a read begun before is not joined after.
func (r *Reads[V]) Forget(key string) { r.g.Forget(key) }
