package fleet

import (
	"context"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// functionCacheTTL is how long a ready function record read by this
// process serves again: the create of a `docker run` reads it (Prepare)
// and its start, a moment later, need not. This process's own changes of
// a record drop it (updateFunction); another control plane's (its gc
// deleting an unused function) show within the TTL.
const functionCacheTTL = time.Second

// getFunction returns the function with key, from the cache when this
// process read it ready within functionCacheTTL.
func (e *Fleet) getFunction(ctx context.Context, key string) (*engine.Function, error) {
	if f, ok := e.ready.Get(key); ok {
		return f, nil
	}
	gen := e.ready.Gen()
	f, err := e.cfg.Store.GetFunction(ctx, key)
	if err == nil && f.Status == engine.FunctionReady {
		e.ready.PutIf(gen, key, f)
	}
	return f, err
}

// updateFunction is the store's UpdateFunction that drops key's cached
// record, before (a read racing with it is not kept) and after.
func (e *Fleet) updateFunction(ctx context.Context, key string, fn func(*engine.Function) (*engine.Function, error)) (*engine.Function, error) {
	e.ready.Drop(key)
	defer e.ready.Drop(key)
	return e.cfg.Store.UpdateFunction(ctx, key, fn)
}
