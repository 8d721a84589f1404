package firestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// containerDoc is a container document: the container as JSON, plus the
// fields the store queries and its log bookkeeping.
type containerDoc struct {
	NS   string `firestore:"ns"`
	JSON string `firestore:"json"`
	// Gen names this incarnation's log collection, so chunks left over
	// from a removed container of the same ID are never read.
	Gen string `firestore:"gen"`
	// Chunks counts the log chunk documents; the last one is the tail.
	Chunks int64 `firestore:"chunks"`
	// TailBytes and TailEntries fill the tail chunk.
	TailBytes   int64 `firestore:"tailBytes"`
	TailEntries int64 `firestore:"tailEntries"`
	// Log holds the first entries inline, keyed as in a chunk, until
	// LogBytes or their count reaches the inline limit: a container with
	// little output never writes a chunk document.
	Log      map[string][]byte `firestore:"log,omitempty"`
	LogBytes int64             `firestore:"logBytes,omitempty"`
}

// nameDoc reserves a container name in a namespace.
type nameDoc struct {
	ID string `firestore:"id"`
}

func encodeContainer(c *engine.Container) (string, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode container %s: %w", c.ID, err)
	}
	return string(data), nil
}

// readContainer decodes a container snapshot; it returns ErrNotFound if
// the doc is missing or belongs to another namespace.
func readContainer(snap *firestore.DocumentSnapshot, ns string) (*containerDoc, *engine.Container, error) {
	if snap == nil || !snap.Exists() {
		return nil, nil, engine.ErrNotFound
	}
	var d containerDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, nil, fmt.Errorf("decode container %s: %w", snap.Ref.ID, err)
	}
	if d.NS != ns {
		return nil, nil, engine.ErrNotFound
	}
	c, err := decodeContainer(snap.Ref.ID, &d)
	if err != nil {
		return nil, nil, err
	}
	return &d, c, nil
}

// decodeContainer decodes a container document's JSON into a new value.
func decodeContainer(id string, d *containerDoc) (*engine.Container, error) {
	var c engine.Container
	if err := json.Unmarshal([]byte(d.JSON), &c); err != nil {
		return nil, fmt.Errorf("decode container %s: %w", id, err)
	}
	return &c, nil
}

// CreateContainer stores c and reserves its name: two creates, each with
// the precondition that the document does not exist, in one transaction.
func (s *Store) CreateContainer(ctx context.Context, c *engine.Container) error {
	data, err := encodeContainer(c)
	if err != nil {
		return err
	}
	doc := containerDoc{NS: c.Namespace, JSON: data, Gen: newGen()}
	s.own.wrote(c.ID, fingerprint(&doc))
	var resp firestore.CommitResponse
	err = s.runTxCommit(ctx, &resp, func(t *txn) error {
		if err := t.create(s.containerRef(c.ID), doc); err != nil {
			return err
		}
		return t.create(s.nameRef(c.Namespace, c.Name), nameDoc{ID: c.ID})
	})
	if err == nil {
		s.known.put(c.ID, &doc, updateTime(&resp, 0))
	}
	if isCode(err, codes.AlreadyExists) {
		// Which of the two was taken? Only the failure path pays this read.
		if snap, gerr := s.getDoc(ctx, s.containerRef(c.ID)); gerr == nil && snap.Exists() {
			return fmt.Errorf("container id %s: %w", c.ID, engine.ErrConflict)
		}
		return fmt.Errorf("name %q: %w", c.Name, engine.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create container %s: %w", c.ID, err)
	}
	return nil
}

// GetContainer finds a container by ID, name or unique ID prefix: a
// document read, then a name reservation read, then a range query on the
// document ID limited to two.
func (s *Store) GetContainer(ctx context.Context, ns, ref string) (*engine.Container, error) {
	if ref == "" {
		return nil, fmt.Errorf("container %q: %w", ref, engine.ErrNotFound)
	}
	if doc, ok := s.watchedDoc(ref); ok && doc.NS == ns {
		if c, err := decodeContainer(ref, doc); err == nil {
			return c, nil
		}
	}
	if s.own.gone(ref) { // a full ID, neither a name nor a prefix of another
		return nil, fmt.Errorf("container %q: %w", ref, engine.ErrNotFound)
	}
	snap, err := s.getDoc(ctx, s.containerRef(ref))
	if err != nil {
		return nil, fmt.Errorf("get container %s: %w", ref, err)
	}
	if d, c, err := readContainer(snap, ns); err == nil {
		s.known.put(ref, d, snap.UpdateTime)
		return c, nil
	} else if !errors.Is(err, engine.ErrNotFound) {
		return nil, err
	}
	nsnap, err := s.getDoc(ctx, s.nameRef(ns, ref))
	if err != nil {
		return nil, fmt.Errorf("get container %s: %w", ref, err)
	}
	if nsnap.Exists() {
		var n nameDoc
		if err := nsnap.DataTo(&n); err != nil {
			return nil, fmt.Errorf("decode name %q: %w", ref, err)
		}
		snap, err := s.getDoc(ctx, s.containerRef(n.ID))
		if err != nil {
			return nil, fmt.Errorf("get container %s: %w", ref, err)
		}
		_, c, err := readContainer(snap, ns)
		if err != nil {
			return nil, fmt.Errorf("container %q: %w", ref, err)
		}
		return c, nil
	}
	cs := s.col(colContainers)
	prefix := docID(ref)
	q := cs.Select("ns", "json").Where("ns", "==", ns).
		Where(firestore.DocumentID, ">=", cs.Doc(prefix)).
		Where(firestore.DocumentID, "<", cs.Doc(prefix+prefixEnd)).
		Limit(2)
	var found []*engine.Container
	err = s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		_, c, err := readContainer(snap, ns)
		if err != nil {
			return true, err
		}
		found = append(found, c)
		return false, nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get container %s: %w", ref, err)
	case len(found) == 0:
		return nil, fmt.Errorf("container %q: %w", ref, engine.ErrNotFound)
	case len(found) > 1:
		return nil, fmt.Errorf("container prefix %q: %w", ref, engine.ErrAmbiguous)
	}
	return found[0], nil
}

// ListContainers returns the namespace's containers, newest first.
func (s *Store) ListContainers(ctx context.Context, ns string) ([]*engine.Container, error) {
	var out []*engine.Container
	err := s.query(ctx, s.col(colContainers).Select("ns", "json").Where("ns", "==", ns), func(snap *firestore.DocumentSnapshot) (bool, error) {
		_, c, err := readContainer(snap, ns)
		if err != nil {
			return true, err
		}
		out = append(out, c)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list containers of %q: %w", ns, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// fnError marks an error returned by a caller's update function, so that
// it is returned as is.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// unwrapFn returns a caller's function error as is and wraps any other.
func unwrapFn(err error, format string, args ...any) error {
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// UpdateContainer is a read-modify-write of one container in a
// transaction; fn runs once per attempt.
func (s *Store) UpdateContainer(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, error) {
	defer s.lock(containerKey(id))()
	if c, ok, err := s.updateKnown(ctx, ns, id, fn); ok || err != nil {
		return c, err
	}
	var out *engine.Container
	var newName string
	var resp firestore.CommitResponse
	var written *containerDoc
	var writeN int64
	err := s.runTxCommit(ctx, &resp, func(t *txn) error {
		written = nil
		ref := s.containerRef(id)
		snap, err := t.get(ref)
		if err != nil {
			return err
		}
		doc, c, err := readContainer(snap, ns)
		if err != nil {
			return err
		}
		s.known.put(id, doc, snap.UpdateTime)
		oldName := c.Name
		if err := fn(c); err != nil {
			return fnError{err}
		}
		c.ID, c.Namespace = id, ns
		newName = c.Name
		if c.Name != oldName {
			newRef := s.nameRef(ns, c.Name)
			nsnap, err := t.get(newRef)
			if err != nil {
				return err
			}
			if nsnap.Exists() {
				return fmt.Errorf("name %q: %w", c.Name, engine.ErrConflict)
			}
			if err := t.delete(s.nameRef(ns, oldName)); err != nil {
				return err
			}
			if err := t.create(newRef, nameDoc{ID: id}); err != nil {
				return err
			}
		}
		data, err := encodeContainer(c)
		if err != nil {
			return err
		}
		out = c
		if data == doc.JSON {
			return nil // nothing changed: no write
		}
		doc.JSON = data
		s.own.wrote(id, fingerprint(doc))
		written, writeN = doc, t.writes
		return t.set(ref, doc)
	})
	if err == nil && written != nil {
		s.known.put(id, written, updateTime(&resp, writeN))
	}
	if isCode(err, codes.AlreadyExists) {
		return nil, fmt.Errorf("update container %s: name %q: %w", id, newName, engine.ErrConflict)
	}
	if err != nil {
		return nil, unwrapFn(err, "update container %s", id)
	}
	return out, nil
}

// updateKnown is UpdateContainer without a read, on the state of the
// container this process knows: ok reports that it is done. It is not
// done (the caller runs the transaction, which calls fn again) if no
// state is known, fn changes the name, fn fails or changes nothing on a
// state the container's watch does not confirm (those are decided on the
// document as it is), or the known state was stale.
func (s *Store) updateKnown(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, bool, error) {
	doc, at, ok := s.known.get(id)
	if !ok || doc.NS != ns {
		return nil, false, nil
	}
	c, err := decodeContainer(id, &doc)
	if err != nil {
		return nil, false, nil
	}
	// The watch of the container confirms the known state when it
	// delivered it last and none of this process's writes is on the way:
	// then what fn decides on it is final, even when it changes nothing.
	confirmed := false
	if cur, ok := s.watchedDoc(id); ok && fingerprint(cur) == fingerprint(&doc) {
		confirmed = true
	}
	oldName := c.Name
	if err := fn(c); err != nil {
		if confirmed {
			return nil, true, err
		}
		return nil, false, nil
	}
	if c.Name != oldName {
		return nil, false, nil
	}
	c.ID, c.Namespace = id, ns
	data, err := encodeContainer(c)
	if err != nil {
		return nil, false, nil
	}
	if data == doc.JSON {
		if confirmed {
			return c, true, nil // nothing changed: no write, and no read
		}
		return nil, false, nil
	}
	doc.JSON = data
	switch err := s.writeKnown(ctx, id, &doc, at, &txn{s: s}); {
	case err == nil:
		return c, true, nil
	case stale(err):
		s.known.drop(id)
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("update container %s: %w", id, err)
	}
}

// maxTxDeletes bounds the log chunks deleted inside DeleteContainer's
// transaction; the rest go in batches after it.
const maxTxDeletes = 400

// DeleteContainer removes a container and its name in one transaction,
// and its log chunks (in it, or after it for a very long log).
func (s *Store) DeleteContainer(ctx context.Context, ns, id string) error {
	unlock := s.lock(containerKey(id))
	var doc *containerDoc
	err := s.deleteKnown(ctx, ns, id)
	if err == nil {
		unlock()
		return nil
	}
	if !errors.Is(err, errUnknown) {
		unlock()
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	err = s.runTx(ctx, func(t *txn) error {
		ref := s.containerRef(id)
		snap, err := t.get(ref)
		if err != nil {
			return err
		}
		d, c, err := readContainer(snap, ns)
		if err != nil {
			return err
		}
		doc = d
		s.own.wrote(id, deleted) // until a watch sees the deletion
		if err := t.delete(ref); err != nil {
			return err
		}
		if err := t.delete(s.nameRef(ns, c.Name)); err != nil {
			return err
		}
		for n := d.Chunks - 1; n >= 0 && n >= d.Chunks-maxTxDeletes; n-- {
			if err := t.delete(s.chunkRef(id, d.Gen, n)); err != nil {
				return err
			}
		}
		return nil
	})
	unlock()
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	s.known.drop(id)
	if rest := doc.Chunks - maxTxDeletes; rest > 0 {
		// The container is gone, so these are unreachable already; a
		// failure here leaves garbage, not wrong answers.
		if err := s.deleteChunks(ctx, id, doc.Gen, rest); err != nil {
			return fmt.Errorf("delete logs of %s: %w", id, err)
		}
	}
	return nil
}

// errUnknown: deleteKnown has no usable known state; the transaction runs.
var errUnknown = errors.New("no known state")

// deleteKnown is DeleteContainer without a read, for a container of few
// log chunks whose state this process knows: its document (if still at
// that state), its name and its chunks, in one transaction of writes.
func (s *Store) deleteKnown(ctx context.Context, ns, id string) error {
	d, at, ok := s.known.get(id)
	if !ok || d.NS != ns || d.Chunks > maxTxDeletes {
		return errUnknown
	}
	c, err := decodeContainer(id, &d)
	if err != nil {
		return errUnknown
	}
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	s.own.wrote(id, deleted)
	var n int64
	err = s.client.RunTransaction(wctx, func(_ context.Context, tx *firestore.Transaction) error {
		n = 0
		if err := tx.Delete(s.containerRef(id), firestore.LastUpdateTime(at)); err != nil {
			return err
		}
		if err := tx.Delete(s.nameRef(ns, c.Name)); err != nil {
			return err
		}
		n = 2
		for i := d.Chunks - 1; i >= 0; i-- {
			if err := tx.Delete(s.chunkRef(id, d.Gen, i)); err != nil {
				return err
			}
			n++
		}
		return nil
	}, firestore.MaxAttempts(1))
	switch {
	case err == nil:
		s.countWrites(n)
		s.known.drop(id)
		return nil
	case stale(err):
		s.known.drop(id)
		return errUnknown
	}
	return err
}

// deleteChunks deletes log chunks [0, n) with a bulk writer.
func (s *Store) deleteChunks(ctx context.Context, id, gen string, n int64) error {
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	bw := s.client.BulkWriter(ctx)
	var jobs []*firestore.BulkWriterJob
	for i := range n {
		j, err := bw.Delete(s.chunkRef(id, gen, i))
		if err != nil {
			bw.End()
			return err
		}
		jobs = append(jobs, j)
	}
	bw.End()
	var errs []error
	for _, j := range jobs {
		if _, err := j.Results(); err != nil {
			errs = append(errs, err)
		} else {
			s.countWrites(1)
		}
	}
	return errors.Join(errs...)
}
