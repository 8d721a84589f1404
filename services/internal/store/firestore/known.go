package firestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
)

// known keeps, per record (a container, a network), the last state of
// its document this process read or wrote with that state's update time.
// A change of a known record is written with the precondition that the
// document is still at that update time, with no read: one call instead
// of a transaction's three. If another process changed it meanwhile the
// precondition fails and the change runs again as a transaction that
// reads it. Reads are never answered from it (another process may have
// changed the document): only writes save their read.
type known[D any] struct {
	mu sync.Mutex
	m  map[string]knownDoc[D]
	// clone copies a document deeply enough that changing the copy leaves
	// the kept one alone (nil: a plain copy does).
	clone func(D) D
	// size estimates a document's memory (nil: 0); bytes sums the kept.
	size  func(D) int
	bytes int
}

type knownDoc[D any] struct {
	doc D
	at  time.Time // the document's update time in that state
}

// knownMax and knownMaxBytes bound the records kept; past either the map
// starts afresh (changes then read once more).
const (
	knownMax      = 10000
	knownMaxBytes = 64 << 20
)

func (k *known[D]) sizeOf(d D) int {
	if k.size == nil {
		return 0
	}
	return k.size(d)
}

func (k *known[D]) copyOf(d D) D {
	if k.clone != nil {
		return k.clone(d)
	}
	return d
}

// get returns a copy of record key's known state.
func (k *known[D]) get(key string) (D, time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	kd, ok := k.m[key]
	if !ok {
		var zero D
		return zero, time.Time{}, false
	}
	return k.copyOf(kd.doc), kd.at, true
}

// put records a state of record key at update time at, unless a later
// one is known.
func (k *known[D]) put(key string, d *D, at time.Time) {
	if d == nil || at.IsZero() {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil || len(k.m) >= knownMax || k.bytes >= knownMaxBytes {
		k.m, k.bytes = map[string]knownDoc[D]{}, 0
	}
	old, ok := k.m[key]
	if ok && old.at.After(at) {
		return
	}
	if ok {
		k.bytes -= k.sizeOf(old.doc)
	}
	k.m[key] = knownDoc[D]{doc: k.copyOf(*d), at: at}
	k.bytes += k.sizeOf(*d)
}

// drop forgets record key (deleted, or its known state proved stale).
func (k *known[D]) drop(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.m[key]; ok {
		k.bytes -= k.sizeOf(old.doc)
		delete(k.m, key)
	}
}

// cloneContainerDoc copies a container document; the log pieces
// themselves are never changed in place.
func cloneContainerDoc(d containerDoc) containerDoc {
	d.Log = maps.Clone(d.Log)
	return d
}

// containerDocSize is about the memory of a container document: its JSON
// and its inline log (up to inlineBytes).
func containerDocSize(d containerDoc) int { return len(d.JSON) + int(d.LogBytes) }

// watchedDoc returns container id's document without a read while a
// watch of it is established: the watch brings other processes' changes
// (with the listener's delay, as reads of its snapshots always had), and
// the known state has this process's own writes as they commit, so it is
// the latest of both. Without an established watch it returns false.
func (s *Store) watchedDoc(id string) (*containerDoc, bool) {
	if !s.own.established(id) {
		return nil, false
	}
	if d, _, ok := s.known.get(id); ok {
		return &d, true
	}
	return s.own.current(id)
}

// stale reports whether a precondition write failed because the document
// changed or went away since its known state (or did not land).
func stale(err error) bool {
	return isCode(err, codes.FailedPrecondition) || isCode(err, codes.NotFound) || errors.Is(err, errNotLanded)
}

// errNotLanded is a write whose answer was lost and which, read back, did
// not land: as a stale one, it is decided again on the record.
var errNotLanded = errors.New("write whose answer was lost did not land")

// settleKnown decides writeKnown's write of container id's new document d
// (and writes more documents with it, all or none) that failed with err,
// by reading the document back: the write landed (nil) when it holds d,
// whether its answer was lost or the client retried a commit that had
// landed and the retry failed its precondition (stale); a lost answer
// that did not land is errNotLanded; any other error stands.
func (s *Store) settleKnown(ctx context.Context, err error, ref *firestore.DocumentRef, id string, d *containerDoc, writes int64) error {
	if ctx.Err() != nil {
		return err
	}
	cur, at, _, rerr := s.readBack(ctx, ref, d.NS, id)
	switch {
	case rerr != nil:
		return fmt.Errorf("%w (and reading it back: %v)", err, rerr)
	case cur != nil && cur.Write == d.Write:
		s.countWrites(writes)
		s.known.put(id, cur, at)
		return nil
	case ambiguous(ctx, err):
		return errNotLanded
	}
	return err
}

// docUpdates are the field updates that make a container document d.
func docUpdates(d *containerDoc) []firestore.Update {
	u := []firestore.Update{
		{Path: "ns", Value: d.NS},
		{Path: "json", Value: d.JSON},
		{Path: "gen", Value: d.Gen},
		{Path: "chunks", Value: d.Chunks},
		{Path: "tailBytes", Value: d.TailBytes},
		{Path: "tailEntries", Value: d.TailEntries},
		{Path: "w", Value: d.Write},
		{Path: "pub", Value: d.Pub},
	}
	if len(d.Log) > 0 {
		return append(u, firestore.Update{Path: "log", Value: d.Log}, firestore.Update{Path: "logBytes", Value: d.LogBytes})
	}
	return append(u, firestore.Update{Path: "log", Value: firestore.Delete}, firestore.Update{Path: "logBytes", Value: firestore.Delete})
}

// writeKnown writes container id's new document d over its known state
// of update time at, with the other writes t queued (in record mode), in
// one Commit call, and keeps d as known. A stale known state is a
// stale(err).
func (s *Store) writeKnown(ctx context.Context, id string, d *containerDoc, at time.Time, t *txn) error {
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	ref := s.ref(d)
	s.stamp(id, d)
	b := s.batch()
	b.Update(ref, docUpdates(d), firestore.LastUpdateTime(at))
	for _, op := range t.ops {
		op(b)
	}
	wrs, err := b.Commit(ctx)
	if err != nil {
		return s.settleKnown(ctx, err, ref, id, d, 1+t.writes)
	}
	s.countWrites(1 + t.writes)
	s.known.put(id, d, wrs[0].UpdateTime)
	return nil
}
