package engine

import (
	"context"
	"sort"
	"strings"
	"time"
)

// eventSeenFor is how long the keys of events from other control planes
// are remembered, so that a watch reopened after a failure, which reads
// the store from a little before, sends none twice.
const eventSeenFor = time.Minute

// eventWatch is one store watch of a namespace's events, shared by this
// process's docker events clients of it.
type eventWatch struct {
	n      int
	cancel context.CancelFunc
}

// watchEvents makes sure events that other control planes store for
// namespace ns reach this process's docker events clients of it, until the
// returned release is called. Without an EventWatcher store it does
// nothing (one process writes the store: its own bus has every event).
func (e *Engine) watchEvents(ns string) (release func()) {
	ew, ok := e.cfg.Store.(EventWatcher)
	if !ok {
		return func() {}
	}
	b := e.events
	b.mu.Lock()
	if b.watches == nil {
		b.watches = map[string]*eventWatch{}
	}
	w := b.watches[ns]
	if w == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		w = &eventWatch{cancel: cancel}
		b.watches[ns] = w
		from := time.Now()
		e.goBackground(func(context.Context) { e.runEventWatch(ctx, ew, ns, from) })
	}
	w.n++
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		w.n--
		if w.n == 0 {
			w.cancel()
			if b.watches[ns] == w {
				delete(b.watches, ns)
			}
		}
	}
}

// runEventWatch follows ns's stored events from from until ctx ends,
// reopening a failed watch, and hands other processes' events to the bus.
func (e *Engine) runEventWatch(ctx context.Context, ew EventWatcher, ns string, from time.Time) {
	seen := map[string]time.Time{}
	deliver := func(evs []StoredEvent) {
		now := time.Now()
		var fresh []StoredEvent
		for _, ev := range evs {
			if _, dup := seen[ev.Key]; dup || eventProcess(ev.Key) == e.process {
				continue
			}
			seen[ev.Key] = now
			fresh = append(fresh, ev)
		}
		for k, at := range seen {
			if now.Sub(at) > eventSeenFor {
				delete(seen, k)
			}
		}
		sort.Slice(fresh, func(i, j int) bool { return fresh[i].Key < fresh[j].Key })
		b := e.events
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, ev := range fresh {
			b.fanOut(nsEvent{key: ev.Key, ns: ns, msg: ev.Message})
		}
	}
	for {
		err := ew.WatchEvents(ctx, ns, eventKeyBefore(from), deliver)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("watch events; retrying", "namespace", ns, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchRetry):
		}
		// Read again from a little before: what was stored meanwhile
		// comes, the seen keys are not sent twice.
		if back := time.Now().Add(-eventSeenFor / 2); back.After(from) {
			from = back
		}
	}
}

// eventProcess is the control plane process an event key names (see
// publishMessage: time-process-count).
func eventProcess(key string) string {
	first, last := strings.IndexByte(key, '-'), strings.LastIndexByte(key, '-')
	if first < 0 || last <= first {
		return ""
	}
	return key[first+1 : last]
}
