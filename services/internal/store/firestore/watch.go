package firestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ownWrites remembers, per container, the last few states of its document
// this process wrote, so that a watch does not wake waiters for a change
// the engine has notified them of already (a watch opened after the
// container was written compares its first snapshot too, so every state is
// kept, not only those of watched containers). A deleted container's
// states are dropped; the map is bounded by ownMaxContainers.
type ownWrites struct {
	mu     sync.Mutex
	states map[string][]uint64 // container ID → fingerprints, newest last
	// pending is, per container, the last own state its watch has not
	// delivered yet; seen holds the last state a watch delivered. While a
	// container is watched and none of its own writes is pending, seen is
	// the document as Firestore has it (other processes' changes arrive
	// with the listener's delay, as they arrived with the poll before), so
	// reads are answered from it.
	pending map[string]uint64
	seen    map[string]*seenDoc
}

// seenDoc is the state a watch delivered last.
type seenDoc struct {
	watches int
	doc     *containerDoc // nil until the first snapshot, or once deleted
	gone    bool          // the watch saw the document deleted
}

const (
	// ownKept is how many of a container's own states are remembered: a
	// watch may deliver an older one after a newer was written.
	ownKept = 8
	// ownMaxContainers bounds the containers remembered; past it the
	// memory starts afresh (a watch then wakes its waiters once more).
	ownMaxContainers = 10000
)

// deleted is the fingerprint of a container document that is gone.
const deleted = 0

// wrote records a state of container id this process is about to commit:
// before the commit, as the listener may deliver it before the commit
// returns. A state whose commit failed stays remembered, harmlessly.
func (o *ownWrites) wrote(id string, fp uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.states == nil || len(o.states) >= ownMaxContainers {
		o.states = map[string][]uint64{}
		o.pending = map[string]uint64{}
	}
	o.pending[id] = fp
	st := append(o.states[id], fp)
	if len(st) > ownKept {
		st = st[len(st)-ownKept:]
	}
	o.states[id] = st
}

// watching and unwatch count the watches of a container.
func (o *ownWrites) watching(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]*seenDoc{}
	}
	sd := o.seen[id]
	if sd == nil {
		sd = &seenDoc{}
		o.seen[id] = sd
	}
	sd.watches++
}

func (o *ownWrites) unwatch(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if sd := o.seen[id]; sd != nil {
		if sd.watches--; sd.watches <= 0 {
			delete(o.seen, id)
		}
	}
}

// delivered takes a state a watch delivered (d nil: deleted) and reports
// whether this process wrote it.
func (o *ownWrites) delivered(id string, fp uint64, d *containerDoc) (own bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	own = slices.Contains(o.states[id], fp)
	if p, ok := o.pending[id]; ok && p == fp {
		delete(o.pending, id)
	}
	if sd := o.seen[id]; sd != nil {
		sd.doc, sd.gone = d, d == nil
	}
	if fp == deleted {
		delete(o.states, id)
	}
	return own
}

// established reports whether container id is watched and its watch has
// delivered a first snapshot: from then on it delivers every change.
func (o *ownWrites) established(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	sd := o.seen[id]
	return sd != nil && (sd.doc != nil || sd.gone)
}

// gone reports whether container id's watch saw it deleted, with no own
// write of it on the way.
func (o *ownWrites) gone(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	sd := o.seen[id]
	_, pending := o.pending[id]
	return sd != nil && sd.gone && !pending
}

// current returns container id's document as its watch delivered it, if
// it is watched, exists and no own write of it is on the way.
func (o *ownWrites) current(id string) (*containerDoc, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sd := o.seen[id]
	if sd == nil || sd.doc == nil {
		return nil, false
	}
	if _, ok := o.pending[id]; ok {
		return nil, false
	}
	return sd.doc, true
}

// fingerprint identifies a container document's content.
func fingerprint(d *containerDoc) uint64 {
	if d == nil {
		return deleted
	}
	h := fnv.New64a()
	var n [8]byte
	field := func(b []byte) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(d.NS))
	field([]byte(d.JSON))
	field([]byte(d.Gen))
	field([]byte(d.Write))
	for _, v := range []int64{d.Chunks, d.TailBytes, d.TailEntries, d.LogBytes, int64(len(d.Log))} {
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	keys := make([]string, 0, len(d.Log))
	for k := range d.Log {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field([]byte(k))
		field(d.Log[k])
	}
	return h.Sum64() | 1 // never the deleted mark
}

// WatchContainer follows container id with a Firestore real-time
// listener on the query for its id in its namespace, and calls changed
// for every state this process did not write itself. A query, not the
// document: a rename moves the container to another document, in one
// commit that the listener delivers as one snapshot, so the watch follows
// it and reports a removal only when the ID is gone. Reads are counted
// as Firestore bills listeners: one per document added or changed in a
// snapshot, at least one per snapshot. It returns nil when ctx ends, or
// the listener's error.
func (s *Store) WatchContainer(ctx context.Context, ns, id string, changed func()) error {
	s.own.watching(id)
	defer s.own.unwatch(id)
	it := s.containers(ns).Where("id", "==", id).Snapshots(ctx)
	defer it.Stop()
	for {
		qs, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || status.Code(err) == codes.Canceled {
				return nil
			}
			return fmt.Errorf("watch container %s: %w", id, err)
		}
		n := int64(0)
		for _, ch := range qs.Changes {
			if ch.Kind != firestore.DocumentRemoved {
				n++
			}
		}
		s.countReads(max(n, 1))
		snaps, err := qs.Documents.GetAll()
		if err != nil {
			return fmt.Errorf("watch container %s: %w", id, err)
		}
		var fp uint64 = deleted
		var doc *containerDoc
		if len(snaps) == 0 {
			s.known.drop(id)
		} else {
			d, _, err := readContainer(snaps[0], ns)
			if err != nil {
				return fmt.Errorf("watch container %s: %w", id, err)
			}
			fp, doc = fingerprint(d), d
			s.known.put(id, d, snaps[0].UpdateTime)
		}
		if !s.own.delivered(id, fp, doc) {
			changed()
		}
	}
}
