package firestore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ambiguous reports whether a write's error leaves open whether it was
// applied: its answer was lost on the way back (the call cancelled or
// failed by the server, Firestore unavailable) while the writer still
// waited. The emulator answers CANCELLED for a commit it applied when a
// listener it notifies of it was closed meanwhile; Google's Firestore may
// apply a write whose answer then fails as UNAVAILABLE.
func ambiguous(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Canceled, codes.Unavailable, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

// readBack reads container id's document ref after an ambiguous write,
// to decide whether the write landed: the container's document as it is
// now (nil when the document is gone or holds another container, exists
// telling which) and its update time. A write found not to have landed
// cannot land later over another: every container write has a
// precondition (the document's absence, or its update time) that the next
// write changes.
func (s *Store) readBack(ctx context.Context, ref *firestore.DocumentRef, ns, id string) (d *containerDoc, at time.Time, exists bool, err error) {
	snap, err := ref.Get(ctx)
	if err != nil && !isCode(err, codes.NotFound) {
		return nil, time.Time{}, false, err
	}
	s.countReads(1)
	if !snap.Exists() {
		return nil, time.Time{}, false, nil
	}
	d, _, err = readContainer(snap, ns)
	if err != nil || d.ID != id {
		return nil, time.Time{}, true, nil
	}
	return d, snap.UpdateTime, true, nil
}

// stamp gives container id's document d, about to be written, a new write
// token and records the state as this process's own write (before the
// commit, as the listener may deliver it before the commit returns; a
// state whose commit failed stays remembered, harmlessly).
func (s *Store) stamp(id string, d *containerDoc) {
	d.Write = newGen()
	s.own.wrote(id, fingerprint(d))
}
