package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// eventRing is how many past events --since can reach back to.
const eventRing = 4096

// eventBus fans events out to docker events clients and keeps the recent
// ones for --since. It lives in memory: events of before a restart are not
// replayed (the store keeps state, not the event history).
type eventBus struct {
	mu   sync.Mutex
	ring []nsEvent
	subs map[chan nsEvent]struct{}
}

type nsEvent struct {
	ns  string
	msg events.Message
}

func newEventBus() *eventBus { return &eventBus{subs: map[chan nsEvent]struct{}{}} }

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
	ev := nsEvent{ns: c.Namespace, msg: events.Message{
		Type: events.ContainerEventType, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: c.ID, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	}}
	b := e.events
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring = append(b.ring, ev)
	if len(b.ring) > eventRing {
		b.ring = b.ring[len(b.ring)-eventRing:]
	}
	for ch := range b.subs {
		select {
		case ch <- ev:
		default: // a client this slow is cut off (its channel closes below)
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// EventOptions select events for docker events.
type EventOptions struct {
	Since, Until time.Time // zero: from now / forever
	Filters      Filters
}

var eventKeys = map[string]bool{"type": true, "event": true, "container": true, "image": true, "label": true, "scope": true}

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
	var past []nsEvent
	if !o.Since.IsZero() {
		for _, ev := range b.ring {
			if ev.msg.TimeNano >= o.Since.UnixNano() {
				past = append(past, ev)
			}
		}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
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
	for _, ev := range past {
		if more, err := send(ev); err != nil || !more {
			return err
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
		return strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == strings.TrimPrefix(v, "/")
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
