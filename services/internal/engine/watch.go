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
	// held is the create's hold (watchCreated) while it lasts: the first
	// waiter takes it over, so that the watch ends with the waiters as
	// any other.
	held *time.Timer
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
	switch {
	case w == nil:
		ctx, cancel := context.WithCancel(e.ctx)
		w = &watch{cancel: cancel}
		e.watches[id] = w
		e.goBackground(func(context.Context) { e.runWatch(ctx, cw, ns, id) })
		w.n++
	case w.held != nil && w.held.Stop():
		w.held = nil // the create's hold is this waiter's now
	default:
		w.n++
	}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.unwatch(id, w)
	}
}

// unwatch drops a hold of watch w of container id; the last ends it.
// e.mu is held.
func (e *Engine) unwatch(id string, w *watch) {
	w.n--
	if w.n == 0 {
		w.cancel()
		if e.watches[id] == w {
			delete(e.watches, id)
		}
	}
}

// createdWatch is how long a container's create keeps it watched unless
// a waiter takes the watch over first: more than a client takes to send
// the requests that follow a create (the docker CLI's run sends attach,
// wait and start within milliseconds).
const createdWatch = 2 * time.Second

// watchCreated watches container id of namespace ns while it is being
// created, on a store other control planes share: the listener opens
// beside the create's write, so that by the time the client's next
// requests arrive (docker run's attach and wait) the watch is established
// and they read the container from it instead of from the store, a round
// trip each on docker run's path. The returned func, called with whether
// the create succeeded, ends the hold at once on failure; on success the
// first waiter takes it over, or it ends after createdWatch. (Handing it
// over, rather than ending it at a time of its own, also keeps the
// emulator's listener shutdowns where they were: one that races a commit
// can fail that commit with CANCELLED.)
func (e *Engine) watchCreated(ns, id string) func(ok bool) {
	if !e.storeShared() {
		return func(bool) {}
	}
	release := e.watch(ns, id)
	return func(ok bool) {
		if !ok {
			release()
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		w := e.watches[id]
		if w == nil {
			return
		}
		w.held = time.AfterFunc(createdWatch, func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if w.held != nil {
				w.held = nil
				e.unwatch(id, w)
			}
		})
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
