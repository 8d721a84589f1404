package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// eventRing is how many recent events the bus keeps in memory: those not
// yet in the store are served from it.
const eventRing = 4096

// Event persistence: the bus writes events to the store in batches (a
// container's life is a handful of events within milliseconds, so they
// cost a write or two, not one each), keeps a day of them, and serves
// --since from the store, so events outlive a control plane restart.
const (
	eventFlushEvery = 200 * time.Millisecond
	eventKeep       = 24 * time.Hour
	eventPruneEvery = 10 * time.Minute
	eventMaxPending = 10000 // while the store fails; the oldest go first
)

// eventBus fans events out to docker events clients, keeps the recent ones
// and queues them for the store.
type eventBus struct {
	mu      sync.Mutex
	ring    []nsEvent
	subs    map[chan nsEvent]struct{}
	pending []StoredEvent
	seq     uint64
	spaces  map[string]bool // namespaces with events, to prune
	// watches follow other control planes' events, per namespace with
	// clients here (eventwatch.go).
	watches map[string]*eventWatch
}

type nsEvent struct {
	key string
	ns  string
	msg events.Message
}

func newEventBus() *eventBus {
	return &eventBus{subs: map[chan nsEvent]struct{}{}, spaces: map[string]bool{}}
}

// eventKeyBefore is below the key of every event at or after t.
func eventKeyBefore(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }

// publish records a container event with docker's attributes (name, image,
// labels) plus extra.
func (e *Engine) publish(c *Container, action string, extra map[string]string) {
	attrs := map[string]string{"name": c.Name, "image": c.ImageRef}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	e.publishMessage(c.Namespace, events.Message{
		Type: events.ContainerEventType, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: c.ID, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// publishMessage fans msg out to namespace ns's subscribers and queues it
// for the store.
func (e *Engine) publishMessage(ns string, msg events.Message) {
	b := e.events
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev := nsEvent{
		// Time first, then this process and its count: unique across
		// control planes sharing the store, and in time order.
		key: fmt.Sprintf("%020d-%s-%08d", msg.TimeNano, e.process, b.seq),
		ns:  ns,
		msg: msg,
	}
	b.ring = append(b.ring, ev)
	if len(b.ring) > eventRing {
		b.ring = b.ring[len(b.ring)-eventRing:]
	}
	b.pending = append(b.pending, StoredEvent{Key: ev.key, Namespace: ev.ns, Message: ev.msg})
	if len(b.pending) > eventMaxPending {
		b.pending = b.pending[len(b.pending)-eventMaxPending:]
	}
	b.spaces[ev.ns] = true
	b.fanOut(ev)
}

// fanOut sends ev to every subscriber; b.mu is held.
func (b *eventBus) fanOut(ev nsEvent) {
	for ch := range b.subs {
		select {
		case ch <- ev:
		default: // a client this slow is cut off (its channel closes below)
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// persistEvents writes queued events to the store until ctx ends, then
// once more, and prunes old ones now and then.
func (e *Engine) persistEvents(ctx context.Context) {
	t := time.NewTicker(eventFlushEvery)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			e.flushEvents(fctx)
			cancel()
			return
		case <-t.C:
			e.flushEvents(ctx)
			if time.Since(pruned) > eventPruneEvery {
				pruned = time.Now()
				e.pruneEvents(ctx)
			}
		}
	}
}

// flushEvents stores the queued events; on failure they stay queued.
func (e *Engine) flushEvents(ctx context.Context) {
	b := e.events
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := e.cfg.Store.AppendEvents(ctx, batch); err != nil {
		e.log.Warn("store events; will retry", "events", len(batch), "err", err)
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		if len(b.pending) > eventMaxPending {
			b.pending = b.pending[len(b.pending)-eventMaxPending:]
		}
		b.mu.Unlock()
	}
}

// pruneEvents drops stored events older than eventKeep.
func (e *Engine) pruneEvents(ctx context.Context) {
	b := e.events
	b.mu.Lock()
	spaces := make([]string, 0, len(b.spaces)+1)
	spaces = append(spaces, DefaultNamespace)
	for ns := range b.spaces {
		if ns != DefaultNamespace {
			spaces = append(spaces, ns)
		}
	}
	b.mu.Unlock()
	before := eventKeyBefore(time.Now().Add(-eventKeep))
	for _, ns := range spaces {
		if err := e.cfg.Store.PruneEvents(ctx, ns, before); err != nil {
			e.log.Warn("prune events", "namespace", ns, "err", err)
		}
	}
}

// EventOptions select events for docker events.
type EventOptions struct {
	Since, Until time.Time // zero: from now / forever
	Filters      Filters
}

var eventKeys = map[string]bool{"type": true, "event": true, "container": true, "image": true, "label": true, "scope": true, "network": true}

// Events emits the namespace's events: past ones from Since, then live
// ones until Until (or ctx ends).
func (e *Engine) Events(ctx context.Context, ns string, o EventOptions, emit func(events.Message) error) error {
	for k := range o.Filters {
		if !eventKeys[k] {
			return Errorf(KindInvalid, "invalid filter '%s'", k)
		}
	}
	b := e.events
	ch := make(chan nsEvent, 1024)
	b.mu.Lock()
	var recent []nsEvent
	if !o.Since.IsZero() {
		for _, ev := range b.ring {
			if ev.ns == ns && ev.msg.TimeNano >= o.Since.UnixNano() {
				recent = append(recent, ev)
			}
		}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	// Live events of other control planes sharing the store.
	defer e.watchEvents(ns)()
	defer func() {
		b.mu.Lock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
		b.mu.Unlock()
	}()
	send := func(ev nsEvent) (bool, error) {
		if !o.Until.IsZero() && ev.msg.TimeNano > o.Until.UnixNano() {
			return false, nil
		}
		if ev.ns == ns && o.Filters.matchEvent(ev.msg) {
			return true, emit(ev.msg)
		}
		return true, nil
	}
	// Past events: the store's (also of before a restart, and of other
	// control planes) and this process's not yet stored, once each, in
	// key (time) order.
	seen := map[string]bool{}
	if !o.Since.IsZero() {
		past := map[string]nsEvent{}
		stored, err := e.cfg.Store.ReadEvents(ctx, ns, eventKeyBefore(o.Since), 0)
		if err != nil {
			e.log.Warn("read stored events; serving recent ones only", "err", err)
		}
		for _, se := range stored {
			past[se.Key] = nsEvent{key: se.Key, ns: se.Namespace, msg: se.Message}
		}
		for _, ev := range recent {
			past[ev.key] = ev
		}
		keys := make([]string, 0, len(past))
		for k := range past {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			seen[k] = true
			if more, err := send(past[k]); err != nil || !more {
				return err
			}
		}
	}
	var until <-chan time.Time
	if !o.Until.IsZero() {
		t := time.NewTimer(time.Until(o.Until))
		defer t.Stop()
		until = t.C
	}
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return Errorf(KindUnavailable, "event stream too slow; reconnect")
			}
			if seen[ev.key] {
				continue
			}
			if more, err := send(ev); err != nil || !more {
				return err
			}
		case <-until:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (f Filters) matchEvent(m events.Message) bool {
	if !anyOf(f["type"], func(v string) bool { return v == string(m.Type) }) {
		return false
	}
	if !anyOf(f["event"], func(v string) bool {
		return v == string(m.Action) || strings.HasPrefix(string(m.Action), v+":")
	}) {
		return false
	}
	if !anyOf(f["container"], func(v string) bool {
		if m.Type == events.NetworkEventType { // connect, disconnect: the container is an attribute
			return m.Actor.Attributes["container"] != "" && strings.HasPrefix(m.Actor.Attributes["container"], v)
		}
		return m.Type == events.ContainerEventType && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == strings.TrimPrefix(v, "/"))
	}) {
		return false
	}
	if !anyOf(f["network"], func(v string) bool {
		return m.Type == events.NetworkEventType && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
	}) {
		return false
	}
	if !anyOf(f["image"], func(v string) bool { return m.Actor.Attributes["image"] == v }) {
		return false
	}
	if !anyOf(f["scope"], func(v string) bool { return v == m.Scope }) {
		return false
	}
	return matchLabels(f["label"], m.Actor.Attributes, true)
}
