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

// containerDoc is a container document, keyed by the container's name in
// its namespace: the container as JSON, plus the fields the store queries
// and its log bookkeeping.
type containerDoc struct {
	NS   string `firestore:"ns"`
	ID   string `firestore:"id"`
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
	// Pub tells that the container's run binds host ports (published
	// ports, which its siblings reach at the gateway): ListPublishing
	// queries it.
	Pub bool `firestore:"pub"`
	// Write is a random token of the write that made this state, so that
	// a writer whose answer was lost can tell its own write from another
	// that made the same content (readBack).
	Write string `firestore:"w,omitempty"`
	// key is the document's ID (the escaped name), not a field of it.
	key string
}

// ref is the document d is stored in.
func (s *Store) ref(d *containerDoc) *firestore.DocumentRef {
	return s.containers(d.NS).Doc(d.key)
}

func encodeContainer(c *engine.Container) (string, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode container %s: %w", c.ID, err)
	}
	return string(data), nil
}

// setState puts container c, encoded as data, in its document d: its
// JSON and the fields queried on it.
func setState(d *containerDoc, c *engine.Container, data string) {
	d.JSON = data
	d.Pub = len(c.Ports) > 0 && c.Run > c.ExitedRun
}

// ListPublishing returns the containers of namespace ns whose run binds
// host ports (publish's gateway lists them for every start): a query on
// the pub field, whose reads are those containers alone, not the
// namespace's. A container written before the field existed is not
// found until its next write.
func (s *Store) ListPublishing(ctx context.Context, ns string) ([]*engine.Container, error) {
	out, err := s.listContainers(ctx, ns, s.containers(ns).Where("pub", "==", true))
	if err != nil {
		return nil, fmt.Errorf("list publishing containers of %q: %w", ns, err)
	}
	return out, nil
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
	d.key = snap.Ref.ID
	c, err := decodeContainer(d.ID, &d)
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

// docReader reads documents, directly or in a transaction (txn).
type docReader interface {
	get(ref *firestore.DocumentRef) (*firestore.DocumentSnapshot, error)
	query(q firestore.Query) ([]*firestore.DocumentSnapshot, error)
}

// direct reads outside a transaction, with the caller's context.
type direct struct {
	ctx context.Context
	s   *Store
}

func (r direct) get(ref *firestore.DocumentRef) (*firestore.DocumentSnapshot, error) {
	return r.s.getDoc(r.ctx, ref)
}

func (r direct) query(q firestore.Query) ([]*firestore.DocumentSnapshot, error) {
	var out []*firestore.DocumentSnapshot
	err := r.s.query(r.ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		out = append(out, snap)
		return false, nil
	})
	return out, err
}

// findContainer reads container id of namespace ns with r: the document
// of its name if this process knows it (one read), else, or if another
// process renamed the container since, a query on its id (one read). The
// state read becomes the known one.
func (s *Store) findContainer(r docReader, ns, id string) (*containerDoc, *engine.Container, error) {
	if d, _, ok := s.known.get(id); ok && d.NS == ns {
		snap, err := r.get(s.ref(&d))
		if err != nil {
			return nil, nil, err
		}
		switch d, c, err := readContainer(snap, ns); {
		case err == nil && d.ID == id:
			s.known.put(id, d, snap.UpdateTime)
			return d, c, nil
		case err != nil && !errors.Is(err, engine.ErrNotFound):
			return nil, nil, err
		}
	}
	snaps, err := r.query(s.containers(ns).Where("id", "==", id).Limit(1))
	if err != nil {
		return nil, nil, err
	}
	if len(snaps) == 0 {
		return nil, nil, engine.ErrNotFound
	}
	d, c, err := readContainer(snaps[0], ns)
	if err != nil {
		return nil, nil, err
	}
	s.known.put(id, d, snaps[0].UpdateTime)
	return d, c, nil
}

// CreateContainer stores c in the document of its name: one write with
// the precondition that the document does not exist, so of two creates
// of one name exactly one commits. The ID is not checked: the engine's
// are 256 random bits.
func (s *Store) CreateContainer(ctx context.Context, c *engine.Container) error {
	data, err := encodeContainer(c)
	if err != nil {
		return err
	}
	ref := s.containerRef(c.Namespace, c.Name)
	doc := containerDoc{NS: c.Namespace, ID: c.ID, Gen: newGen(), key: ref.ID}
	setState(&doc, c, data)
	s.stamp(c.ID, &doc)
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		wr, err := ref.Create(wctx, doc)
		if err == nil {
			s.countWrites(1)
			s.known.put(c.ID, &doc, wr.UpdateTime)
			return nil
		}
		taken := isCode(err, codes.AlreadyExists)
		if !taken && !ambiguous(wctx, err) {
			return fmt.Errorf("create container %s: %w", c.ID, err)
		}
		// Its answer was lost, or the name is taken, maybe by this very
		// create (the client retries a commit whose answer it lost): the
		// document tells.
		cur, at, exists, rerr := s.readBack(wctx, ref, c.Namespace, c.ID)
		switch {
		case rerr != nil:
			return fmt.Errorf("create container %s: %w (and reading it back: %v)", c.ID, err, rerr)
		case cur != nil && cur.Write == doc.Write:
			s.countWrites(1)
			s.known.put(c.ID, cur, at)
			return nil
		case exists || attempt == maxAmbiguous && taken:
			return fmt.Errorf("name %q: %w", c.Name, engine.ErrConflict)
		case attempt == maxAmbiguous:
			return fmt.Errorf("create container %s: %w", c.ID, err)
		}
		// Not there (any more): create it again.
	}
}

// maxAmbiguous bounds the tries of a write whose answers are lost.
const maxAmbiguous = 3

// KnownContainer returns the last state of container id this process
// read or wrote, without a read (engine.KnownContainers): not
// necessarily current.
func (s *Store) KnownContainer(ns, id string) (*engine.Container, bool) {
	d, _, ok := s.known.get(id)
	if !ok || d.NS != ns {
		return nil, false
	}
	c, err := decodeContainer(id, &d)
	return c, err == nil
}

// GetContainer finds a container by ID, name or unique ID prefix: a
// container whose ID this process knows is read from the document of its
// name (one read); any other ref is first a range query on the id field
// limited to two (an exact ID sorts first), then, unless it found the
// ID, a read of the document of ref as a name.
func (s *Store) GetContainer(ctx context.Context, ns, ref string) (*engine.Container, error) {
	if ref == "" {
		return nil, fmt.Errorf("container %q: %w", ref, engine.ErrNotFound)
	}
	if doc, ok := s.watchedDoc(ref); ok && doc.NS == ns {
		if c, err := decodeContainer(ref, doc); err == nil {
			return c, nil
		}
	}
	if s.own.gone(ref) || s.removedHere(ns, ref) { // a full ID, neither a name nor a prefix of another
		return nil, fmt.Errorf("container %q: %w", ref, engine.ErrNotFound)
	}
	r := direct{ctx, s}
	if d, _, ok := s.known.get(ref); ok && d.NS == ns {
		_, c, err := s.findContainer(r, ns, ref)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("get container %s: %w", ref, err)
		}
		// Gone; ref may still name another container.
	}
	found, err := r.query(s.containers(ns).
		Where("id", ">=", ref).Where("id", "<", ref+prefixEnd).
		OrderBy("id", firestore.Asc).Limit(2))
	if err != nil {
		return nil, fmt.Errorf("get container %s: %w", ref, err)
	}
	pick := func(snap *firestore.DocumentSnapshot) (*engine.Container, error) {
		d, c, err := readContainer(snap, ns)
		if err != nil {
			return nil, fmt.Errorf("container %q: %w", ref, err)
		}
		s.known.put(d.ID, d, snap.UpdateTime)
		return c, nil
	}
	if len(found) > 0 {
		if id, err := found[0].DataAt("id"); err == nil && id == ref {
			return pick(found[0])
		}
	}
	snap, err := r.get(s.containerRef(ns, ref))
	if err != nil {
		return nil, fmt.Errorf("get container %s: %w", ref, err)
	}
	if snap.Exists() {
		return pick(snap)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("container %q: %w", ref, engine.ErrNotFound)
	case 1:
		return pick(found[0])
	}
	return nil, fmt.Errorf("container prefix %q: %w", ref, engine.ErrAmbiguous)
}

// ListContainers returns the namespace's containers, newest first.
func (s *Store) ListContainers(ctx context.Context, ns string) ([]*engine.Container, error) {
	out, err := s.listContainers(ctx, ns, s.containers(ns).Query)
	if err != nil {
		return nil, fmt.Errorf("list containers of %q: %w", ns, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// listContainers returns the containers of namespace ns that q finds.
func (s *Store) listContainers(ctx context.Context, ns string, q firestore.Query) ([]*engine.Container, error) {
	var out []*engine.Container
	err := s.query(ctx, q.Select("ns", "id", "json"), func(snap *firestore.DocumentSnapshot) (bool, error) {
		_, c, err := readContainer(snap, ns)
		if err != nil {
			return true, err
		}
		out = append(out, c)
		return false, nil
	})
	return out, err
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
// transaction; fn runs once per attempt. A rename moves the container to
// the document of its new name: that document is created (so a taken
// name conflicts) and the old one deleted, in the same commit.
func (s *Store) UpdateContainer(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, error) {
	defer s.lock(containerKey(id))()
	if s.removedHere(ns, id) {
		return nil, fmt.Errorf("update container %s: %w", id, engine.ErrNotFound)
	}
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
		doc, c, err := s.findContainer(t, ns, id)
		if err != nil {
			return err
		}
		old := s.ref(doc)
		if err := fn(c); err != nil {
			return fnError{err}
		}
		c.ID, c.Namespace = id, ns
		newName = c.Name
		data, err := encodeContainer(c)
		if err != nil {
			return err
		}
		out = c
		if data == doc.JSON {
			return nil // nothing changed: no write
		}
		setState(doc, c, data)
		doc.key = s.containerRef(ns, c.Name).ID
		s.stamp(id, doc)
		written, writeN = doc, t.writes
		if doc.key == old.ID {
			return t.set(old, doc)
		}
		if err := t.create(s.ref(doc), doc); err != nil {
			return err
		}
		return t.delete(old)
	})
	if err != nil && written != nil {
		// The commit of the container's new state may have landed with
		// its answer lost: then the change is done.
		sctx, cancel := s.writeContext(ctx)
		if s.settleKnown(sctx, err, s.ref(written), id, written, writeN+1) == nil {
			err, written = nil, nil // known from the read back
		}
		cancel()
	}
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
	setState(&doc, c, data)
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

// DeleteContainer removes a container (and so frees its name) and its
// log chunks: in one transaction, or after it for a very long log.
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
		d, _, err := s.findContainer(t, ns, id)
		if err != nil {
			return err
		}
		doc = d
		s.own.wrote(id, deleted) // until a watch sees the deletion
		if err := t.delete(s.ref(d)); err != nil {
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
// log chunks whose state this process knows: its document, if still at
// that state, with its chunks, in one Commit call.
func (s *Store) deleteKnown(ctx context.Context, ns, id string) error {
	d, at, ok := s.known.get(id)
	if !ok || d.NS != ns || d.Chunks > maxTxDeletes {
		return errUnknown
	}
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	s.own.wrote(id, deleted)
	ref := s.ref(&d)
	b := s.batch()
	b.Delete(ref, firestore.LastUpdateTime(at))
	for i := d.Chunks - 1; i >= 0; i-- {
		b.Delete(s.chunkRef(id, d.Gen, i))
	}
	_, err := b.Commit(wctx)
	if err != nil && wctx.Err() == nil {
		// Its answer was lost (or, retried by the client, the retry found
		// the document gone): did it land? The container is looked up
		// by its ID: another process may have renamed it.
		switch _, _, ferr := s.findContainer(direct{wctx, s}, ns, id); {
		case errors.Is(ferr, engine.ErrNotFound):
			err = nil
		case ferr == nil && ambiguous(wctx, err):
			err = errNotLanded
		}
	}
	switch {
	case err == nil:
		s.countWrites(1 + d.Chunks)
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
