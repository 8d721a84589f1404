package engine

import (
	"context"
	"time"
)

// watchRetry is how long a failed store watch waits before it is opened
// again; meanwhile its waiters are woken at that pace to read the store.
const watchRetry = time.Second

// watch is one store watch of a container, shared by its local waiters.
type watch struct {
	n      int
	cancel context.CancelFunc
}

// watch makes sure the store's changes of container id made by other
// control planes wake this process's waiters, for as long as the returned
// release has not been called. Waiters call it before their first read of
// the store. Without a ContainerWatcher store it does nothing.
func (e *Engine) watch(ns, id string) (release func()) {
	cw, ok := e.cfg.Store.(ContainerWatcher)
	if !ok {
		return func() {}
	}
	e.mu.Lock()
	w := e.watches[id]
	if w == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		w = &watch{cancel: cancel}
		e.watches[id] = w
		e.goBackground(func(context.Context) { e.runWatch(ctx, cw, ns, id) })
	}
	w.n++
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		w.n--
		if w.n == 0 {
			w.cancel()
			if e.watches[id] == w {
				delete(e.watches, id)
			}
		}
	}
}

// runWatch follows the store until ctx ends, reopening a failed watch.
func (e *Engine) runWatch(ctx context.Context, cw ContainerWatcher, ns, id string) {
	for {
		err := cw.WatchContainer(ctx, ns, id, func() { e.notify.notify(id) })
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("watch container; retrying", "container", id, "err", err)
		e.notify.notify(id) // what happened meanwhile is read again
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchRetry):
		}
	}
}

// storeShared reports whether other control planes write the store too
// (it is a ContainerWatcher, as Firestore): its writes are round trips
// worth a short wait to save.
func (e *Engine) storeShared() bool {
	_, ok := e.cfg.Store.(ContainerWatcher)
	return ok
}
