package firestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

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
	}
	st := append(o.states[id], fp)
	if len(st) > ownKept {
		st = st[len(st)-ownKept:]
	}
	o.states[id] = st
}

// forget drops a deleted container's states.
func (o *ownWrites) forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.states, id)
}

// own reports whether state fp of container id is one this process wrote.
func (o *ownWrites) own(id string, fp uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Contains(o.states[id], fp)
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

// WatchContainer follows container id's document with a Firestore
// real-time listener (one read per delivered change, as Firestore bills
// listeners) and calls changed for every state this process did not write
// itself. It returns nil when ctx ends, or the listener's error.
func (s *Store) WatchContainer(ctx context.Context, ns, id string, changed func()) error {
	it := s.containerRef(id).Snapshots(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || status.Code(err) == codes.Canceled {
				return nil
			}
			return fmt.Errorf("watch container %s: %w", id, err)
		}
		s.reads.Add(1)
		var fp uint64 = deleted
		if snap.Exists() {
			var d containerDoc
			if err := snap.DataTo(&d); err != nil {
				return fmt.Errorf("watch container %s: decode: %w", id, err)
			}
			if d.NS != ns {
				continue
			}
			fp = fingerprint(&d)
		}
		if !s.own.own(id, fp) {
			changed()
		}
		if fp == deleted {
			s.own.forget(id)
		}
	}
}
