package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// colRemoved holds, per namespace, the final documents of containers
// removed together with their last exit (AppendLogsRemove), keyed by ID.
const colRemoved = "removed"

// finalTTL is how long a final document serves: long enough for any
// follower or waiter of the container, on any control plane, to read its
// exit and its last output. Its expires field is the Firestore TTL
// policy's (terraform); reads ignore an expired one.
const finalTTL = 10 * time.Minute

// finalDoc is the last state of a removed container: its document as the
// commit that removed it left it (with its inline log).
type finalDoc struct {
	containerDoc
	Expires time.Time `firestore:"expires"`
}

func (s *Store) finalRef(ns, id string) *firestore.DocumentRef {
	return s.nsCol(ns, colRemoved).Doc(id)
}

var _ engine.FinalRemover = (*Store)(nil)

// AppendLogsRemove is AppendLogsUpdate that, when remove holds for the
// container as fn left it, also deletes it in the same commit and keeps
// its final document (engine.FinalRemover): the exit of an --rm container
// and its removal are one round trip instead of two. It does so on the
// state this process knows, for a container whose whole output is in its
// document (no log chunk), with one call: a Commit of the deletion,
// preconditioned on that state, and of the final document. Otherwise, or
// if that state proves stale, it is AppendLogsUpdate (UpdateContainer
// without entries) and removed is false.
func (s *Store) AppendLogsRemove(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64, fn func(*engine.Container) error, remove func(*engine.Container) bool) ([]engine.LogEntry, *engine.Container, bool, error) {
	unlock := s.lock(containerKey(id))
	if doc, at, ok := s.known.get(id); ok && doc.NS == ns && doc.Chunks == 0 {
		t := &txn{s: s}
		out, c, changed, err := s.appendTo(t, id, &doc, entries, acked, fn)
		if err == nil && changed && len(t.ops) == 0 && doc.Chunks == 0 && remove(c) {
			switch err := s.removeFinal(ctx, id, &doc, at); {
			case err == nil:
				unlock()
				return out, c, true, nil
			case stale(err):
				s.known.drop(id) // decided again below, on the record
			default:
				unlock()
				return nil, nil, false, fmt.Errorf("remove %s with its exit: %w", id, err)
			}
		}
	}
	unlock()
	if len(entries) == 0 && len(acked) == 0 {
		c, err := s.UpdateContainer(ctx, ns, id, fn)
		return nil, c, false, err
	}
	out, c, err := s.appendUpdate(ctx, ns, id, entries, acked, fn)
	return out, c, false, err
}

// removeFinal deletes container id's document, if still at its known
// update time at, and writes d, its new state, as its final document, in
// one Commit. A write whose answer was lost is settled by reading the
// final document back (its write token tells).
func (s *Store) removeFinal(ctx context.Context, id string, d *containerDoc, at time.Time) error {
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	s.stamp(id, d)
	s.own.wrote(id, deleted) // until a watch sees the deletion
	ref, fref := s.ref(d), s.finalRef(d.NS, id)
	fin := finalDoc{containerDoc: *d, Expires: time.Now().Add(finalTTL).UTC()}
	b := s.batch()
	b.Delete(ref, firestore.LastUpdateTime(at))
	b.Set(fref, fin)
	_, err := b.Commit(ctx)
	if err != nil && ctx.Err() == nil {
		switch f, rerr := s.readFinal(ctx, d.NS, id); {
		case rerr == nil && f.Write == d.Write:
			err = nil // it landed: the deletion went with it
		case errors.Is(rerr, engine.ErrNotFound) && ambiguous(ctx, err):
			err = errNotLanded
		}
	}
	if err != nil {
		return err
	}
	s.countWrites(2)
	s.known.drop(id)
	s.finals.PutIf(s.finals.Gen(), id, fin)
	return nil
}

// ownFinal returns the final document of container id of namespace ns
// if this process removed it with its exit lately, without a read.
func (s *Store) ownFinal(ns, id string) (*finalDoc, bool) {
	f, ok := s.finals.Get(id)
	if !ok || f.NS != ns {
		return nil, false
	}
	return &f, true
}

// removedHere reports whether this process removed container id of
// namespace ns with its exit lately: then a change of it is answered
// without a read (an ID never comes back).
func (s *Store) removedHere(ns, id string) bool {
	_, ok := s.ownFinal(ns, id)
	return ok
}

// readFinal reads container id's final document, if any and not expired.
func (s *Store) readFinal(ctx context.Context, ns, id string) (*finalDoc, error) {
	snap, err := s.getDoc(ctx, s.finalRef(ns, id))
	if err != nil {
		return nil, err
	}
	if !snap.Exists() {
		return nil, engine.ErrNotFound
	}
	var f finalDoc
	if err := snap.DataTo(&f); err != nil {
		return nil, fmt.Errorf("decode final document of %s: %w", id, err)
	}
	if f.NS != ns || f.ID != id || time.Now().After(f.Expires) {
		return nil, engine.ErrNotFound
	}
	f.key = snap.Ref.ID
	return &f, nil
}

// final returns container id's final document: this process's own, kept
// as long as it serves, or read.
func (s *Store) final(ctx context.Context, ns, id string) (*finalDoc, error) {
	if f, ok := s.ownFinal(ns, id); ok {
		return f, nil
	}
	return s.readFinal(ctx, ns, id)
}

// Removed returns the final state of container id of namespace ns, which
// AppendLogsRemove removed lately (engine.FinalRemover), or ErrNotFound.
func (s *Store) Removed(ctx context.Context, ns, id string) (*engine.Container, error) {
	f, err := s.final(ctx, ns, id)
	if err != nil {
		return nil, fmt.Errorf("removed container %s: %w", id, err)
	}
	return decodeContainer(id, &f.containerDoc)
}
