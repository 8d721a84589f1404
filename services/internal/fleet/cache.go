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
// process read it ready within functionCacheTTL. A read of key under way
// is joined, not repeated: the start of a `docker run` comes while its
// create's read (Prepare) is on the way.
func (e *Fleet) getFunction(ctx context.Context, key string) (*engine.Function, error) {
	if f, ok := e.ready.Get(key); ok {
		return f, nil
	}
	return e.reads.Do(ctx, key, func() (*engine.Function, error) {
		gen := e.ready.Gen()
		// Not the first caller's context: another may have joined.
		f, err := e.cfg.Store.GetFunction(e.ctx, key)
		if err == nil && f.Status == engine.FunctionReady {
			e.ready.PutIf(gen, key, f)
		}
		return f, err
	})
}

// updateFunction is the store's UpdateFunction that drops key's cached
// record, before (a read racing with it is not kept) and after.
func (e *Fleet) updateFunction(ctx context.Context, key string, fn func(*engine.Function) (*engine.Function, error)) (*engine.Function, error) {
	// A read begun before the change or during it is neither kept nor
	// joined after it.
	forget := func() {
		e.ready.Drop(key)
		e.reads.Forget(key)
	}
	forget()
	defer forget()
	return e.cfg.Store.UpdateFunction(ctx, key, fn)
}
