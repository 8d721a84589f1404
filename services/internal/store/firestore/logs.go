package firestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Log chunk limits: a chunk document stays far below Firestore's 1 MiB
// and 40,000 index entries, and one AppendLogs commit below its 10 MiB.
const (
	chunkBytes     = 256 << 10 // payload per chunk; bigger entries are split
	chunkEntries   = 500       // pieces per chunk
	pieceOverhead  = 48        // key, header and field overhead per piece
	minSplitRoom   = 4 << 10   // below this a split piece starts a new chunk
	maxAppendBytes = 8 << 20   // payload of one AppendLogs call
	inlineBytes    = 64 << 10  // log payload kept in the container doc
	inlineEntries  = 256       // entries kept in the container doc
)

// Piece kinds, the first byte of a stored piece.
const (
	pieceWhole = 0x01 // the entry, or the last piece of a split one
	pieceMore  = 0x02 // a piece that the next chunk continues
)

// chunkDoc holds consecutive log pieces under keys "%016x" of their seq.
// First and Last are the seqs of its first and last piece; ReadLogs
// queries chunks by Last.
type chunkDoc struct {
	First int64             `firestore:"first"`
	Last  int64             `firestore:"last"`
	E     map[string][]byte `firestore:"e"`
}

func (s *Store) logRef(id, gen string) *firestore.DocumentRef {
	return s.col(colLogs).Doc(docID(id) + "~" + gen)
}

func (s *Store) chunkRef(id, gen string, n int64) *firestore.DocumentRef {
	return s.logRef(id, gen).Collection(colChunks).Doc(fmt.Sprintf("%08d", n))
}

func seqField(seq uint64) string { return fmt.Sprintf("%016x", seq) }

// encodePiece packs kind byte, uvarint stream, varint Unix seconds,
// uvarint nanoseconds, then the data (as the embedded store's entries).
func encodePiece(kind byte, e engine.LogEntry, data []byte) []byte {
	buf := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(data))
	buf = append(buf, kind)
	buf = binary.AppendUvarint(buf, uint64(e.Stream))
	buf = binary.AppendVarint(buf, e.Time.Unix())
	buf = binary.AppendUvarint(buf, uint64(e.Time.Nanosecond()))
	return append(buf, data...)
}

var errBadPiece = errors.New("malformed log piece")

// decodePiece reads a piece stored under seq.
func decodePiece(seq uint64, v []byte) (e engine.LogEntry, more bool, err error) {
	if len(v) == 0 || (v[0] != pieceWhole && v[0] != pieceMore) {
		return e, false, errBadPiece
	}
	more = v[0] == pieceMore
	p := v[1:]
	stream, n := binary.Uvarint(p)
	if n <= 0 {
		return e, false, errBadPiece
	}
	p = p[n:]
	sec, n := binary.Varint(p)
	if n <= 0 {
		return e, false, errBadPiece
	}
	p = p[n:]
	nsec, n := binary.Uvarint(p)
	if n <= 0 || nsec >= 1e9 {
		return e, false, errBadPiece
	}
	e.Seq, e.Stream = seq, int(stream)
	e.Time = time.Unix(sec, int64(nsec)).UTC()
	e.Data = p[n:]
	return e, more, nil
}

// chunkWriter lays pieces into the tail chunk and new chunks.
type chunkWriter struct {
	doc        *containerDoc
	tail       []firestore.Update // pieces added to the existing tail chunk
	tailLast   uint64
	fresh      []*chunkDoc // chunks created by this append
	bytes, cnt int64       // fill of the current chunk
}

func newChunkWriter(doc *containerDoc) *chunkWriter {
	return &chunkWriter{doc: doc, bytes: doc.TailBytes, cnt: doc.TailEntries}
}

// open reports whether a current chunk (the tail or a fresh one) exists.
func (w *chunkWriter) open() bool { return w.doc.Chunks > 0 || len(w.fresh) > 0 }

func (w *chunkWriter) startChunk(seq uint64) {
	w.fresh = append(w.fresh, &chunkDoc{First: int64(seq), E: map[string][]byte{}})
	w.bytes, w.cnt = 0, 0
}

func (w *chunkWriter) put(seq uint64, piece []byte) {
	key := seqField(seq)
	if len(w.fresh) == 0 {
		w.tail = append(w.tail, firestore.Update{FieldPath: firestore.FieldPath{"e", key}, Value: piece})
		w.tailLast = seq
	} else {
		c := w.fresh[len(w.fresh)-1]
		c.E[key] = piece
		c.Last = int64(seq)
	}
	w.bytes += int64(len(piece)) + pieceOverhead
	w.cnt++
}

// add stores entry e (Seq set): inline in the container doc while no
// chunk exists and it fits, else in chunks, split if it does not fit one.
func (w *chunkWriter) add(e engine.LogEntry) {
	d := w.doc
	if !w.open() && d.LogBytes+int64(len(e.Data))+pieceOverhead <= inlineBytes && len(d.Log) < inlineEntries {
		if d.Log == nil {
			d.Log = map[string][]byte{}
		}
		piece := encodePiece(pieceWhole, e, e.Data)
		d.Log[seqField(e.Seq)] = piece
		d.LogBytes += int64(len(piece)) + pieceOverhead
		return
	}
	rest := e.Data
	for {
		room := chunkBytes - w.bytes - pieceOverhead
		need := int64(len(rest))
		switch {
		case !w.open() || w.cnt >= chunkEntries:
			w.startChunk(e.Seq)
			continue
		case need <= room:
			w.put(e.Seq, encodePiece(pieceWhole, e, rest))
			return
		case w.cnt > 0 && (need+pieceOverhead <= chunkBytes || room < minSplitRoom):
			w.startChunk(e.Seq) // whole in a fresh chunk, or too little room to split into
			continue
		}
		w.put(e.Seq, encodePiece(pieceMore, e, rest[:room]))
		rest = rest[room:]
		w.startChunk(e.Seq)
	}
}

// write queues the chunk writes in t and moves the doc's bookkeeping.
func (w *chunkWriter) write(s *Store, t *txn, id string) error {
	d := w.doc
	if len(w.tail) > 0 {
		u := append(w.tail, firestore.Update{Path: "last", Value: int64(w.tailLast)})
		if err := t.update(s.chunkRef(id, d.Gen, d.Chunks-1), u); err != nil {
			return err
		}
	}
	for _, c := range w.fresh {
		if err := t.create(s.chunkRef(id, d.Gen, d.Chunks), c); err != nil {
			return err
		}
		d.Chunks++
	}
	d.TailBytes, d.TailEntries = w.bytes, w.cnt
	return nil
}

// AppendLogs stores entries after the last one, assigning Seq, and moves
// the container's LogSeq and Acked in the same transaction. Entries go
// into the tail chunk by field updates (no read of it) and into new
// chunks when it is full: usually two writes, the container and the tail.
func (s *Store) AppendLogs(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64) ([]engine.LogEntry, error) {
	out, _, err := s.appendUpdate(ctx, ns, id, entries, acked, nil)
	return out, err
}

// AppendLogsUpdate is AppendLogs and UpdateContainer(fn) in one write of
// the container: the last output of a run and its exit.
func (s *Store) AppendLogsUpdate(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64, fn func(*engine.Container) error) ([]engine.LogEntry, *engine.Container, error) {
	return s.appendUpdate(ctx, ns, id, entries, acked, fn)
}

func (s *Store) appendUpdate(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64, fn func(*engine.Container) error) ([]engine.LogEntry, *engine.Container, error) {
	total := 0
	for _, e := range entries {
		total += len(e.Data)
	}
	if total > maxAppendBytes {
		return nil, nil, fmt.Errorf("append logs of %s: %d bytes in one call, more than %d", id, total, maxAppendBytes)
	}
	defer s.lock(containerKey(id))()
	if s.removedHere(ns, id) {
		return nil, nil, fmt.Errorf("append logs of %s: %w", id, engine.ErrNotFound)
	}
	if doc, at, ok := s.known.get(id); ok && doc.NS == ns {
		// Without a read, on the state this process knows (see known).
		t := &txn{s: s}
		out, c, changed, err := s.appendTo(t, id, &doc, entries, acked, fn)
		if err == nil && changed {
			switch err := s.writeKnown(ctx, id, &doc, at, t); {
			case err == nil:
				return out, c, nil
			case stale(err):
				s.known.drop(id)
			default:
				return nil, nil, fmt.Errorf("append logs of %s: %w", id, err)
			}
		}
	}
	var out []engine.LogEntry
	var updated *engine.Container
	var resp firestore.CommitResponse
	var written *containerDoc
	var writeN int64
	err := s.runTxCommit(ctx, &resp, func(t *txn) error {
		written = nil
		doc, _, err := s.findContainer(t, ns, id)
		if err != nil {
			return err
		}
		var changed bool
		if out, updated, changed, err = s.appendTo(t, id, doc, entries, acked, fn); err != nil || !changed {
			return err // no change (acks already stored): no write
		}
		s.stamp(id, doc)
		written, writeN = doc, t.writes
		return t.set(s.ref(doc), doc)
	})
	if err != nil {
		return nil, nil, unwrapFn(err, "append logs of %s", id)
	}
	if written != nil {
		s.known.put(id, written, updateTime(&resp, writeN))
	}
	return out, updated, nil
}

// errRenameInAppend: AppendLogsUpdate's fn may not rename.
var errRenameInAppend = errors.New("a rename with an append of logs")

// appendTo lays entries and acks into container document doc, applies fn
// (if not nil) and queues the writes of its log chunks in t; it reports
// whether doc changed (it is then for the caller to write). An error of
// fn is an fnError.
func (s *Store) appendTo(t *txn, id string, doc *containerDoc, entries []engine.LogEntry, acked map[uint32]uint64, fn func(*engine.Container) error) ([]engine.LogEntry, *engine.Container, bool, error) {
	c, err := decodeContainer(id, doc)
	if err != nil {
		return nil, nil, false, err
	}
	if doc.Gen == "" {
		doc.Gen = newGen()
	}
	w := newChunkWriter(doc)
	out := make([]engine.LogEntry, len(entries))
	for i, e := range entries {
		c.LogSeq++
		c.LogBytes += int64(len(e.Data))
		e.Seq = c.LogSeq
		w.add(e)
		out[i] = e
	}
	c.MergeAcked(acked)
	if fn != nil {
		name := c.Name
		if err := fn(c); err != nil {
			return nil, nil, false, fnError{err}
		}
		if c.Name != name {
			return nil, nil, false, errRenameInAppend
		}
		c.ID, c.Namespace = id, doc.NS
	}
	data, err := encodeContainer(c)
	if err != nil {
		return nil, nil, false, err
	}
	if data == doc.JSON {
		return out, c, false, nil
	}
	if err := w.write(s, t, id); err != nil {
		return nil, nil, false, err
	}
	setState(doc, c, data)
	return out, c, true, nil
}

// ReadLogs returns up to limit entries after seq after (limit ≤ 0: all):
// the container read (with the inline entries), then, if more are wanted,
// a query of the chunks whose Last is past after, in order, read only as
// far as needed.
func (s *Store) ReadLogs(ctx context.Context, ns, id string, after uint64, limit int) ([]engine.LogEntry, error) {
	doc, c, err := s.logsContainer(ctx, ns, id)
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", id, err)
	}
	if after >= c.LogSeq {
		return nil, nil
	}
	r := &logReader{after: after, limit: limit}
	if done, err := r.pieces(doc.Log); err != nil || done || doc.Chunks == 0 {
		return r.result(id, err)
	}
	q := s.logRef(id, doc.Gen).Collection(colChunks).Where("last", ">", int64(after)).OrderBy("last", firestore.Asc)
	err = s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		var ch chunkDoc
		if err := snap.DataTo(&ch); err != nil {
			return true, fmt.Errorf("decode chunk %s: %w", snap.Ref.ID, err)
		}
		done, err := r.pieces(ch.E)
		if err != nil {
			return true, fmt.Errorf("chunk %s: %w", snap.Ref.ID, err)
		}
		return done, nil
	})
	return r.result(id, err)
}

// logsContainer reads the container document whose log is read, from its
// watch when that is current; of a container removed with its exit, its
// final document (its followers read the last output there).
func (s *Store) logsContainer(ctx context.Context, ns, id string) (*containerDoc, *engine.Container, error) {
	if doc, ok := s.watchedDoc(id); ok && doc.NS == ns {
		if c, err := decodeContainer(id, doc); err == nil {
			return doc, c, nil
		}
	}
	f, ok := s.ownFinal(ns, id) // removed here: no read
	if !ok {
		doc, c, err := s.findContainer(direct{ctx, s}, ns, id)
		if !errors.Is(err, engine.ErrNotFound) {
			return doc, c, err
		}
		var ferr error
		if f, ferr = s.readFinal(ctx, ns, id); ferr != nil {
			return nil, nil, err
		}
	}
	c, err := decodeContainer(id, &f.containerDoc)
	return &f.containerDoc, c, err
}

// logReader joins pieces, in order, into entries after a seq.
type logReader struct {
	after   uint64
	limit   int
	out     []engine.LogEntry
	partial bool // out's last entry awaits more pieces
}

// pieces takes the pieces of one chunk (or the inline log) and reports
// whether the limit is reached.
func (r *logReader) pieces(m map[string][]byte) (done bool, err error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		seq, err := strconv.ParseUint(k, 16, 64)
		if err != nil {
			return true, fmt.Errorf("key %q: %w", k, err)
		}
		if seq <= r.after {
			continue
		}
		e, more, err := decodePiece(seq, m[k])
		if err != nil {
			return true, fmt.Errorf("seq %d: %w", seq, err)
		}
		if r.partial && r.out[len(r.out)-1].Seq == seq {
			last := &r.out[len(r.out)-1]
			last.Data = append(last.Data, e.Data...)
		} else {
			if r.partial {
				return true, fmt.Errorf("seq %d after an unfinished entry: %w", seq, errBadPiece)
			}
			e.Data = append([]byte(nil), e.Data...)
			r.out = append(r.out, e)
		}
		r.partial = more
		if !r.partial && r.limit > 0 && len(r.out) >= r.limit {
			return true, nil
		}
	}
	return false, nil
}

func (r *logReader) result(id string, err error) ([]engine.LogEntry, error) {
	if err == nil && r.partial {
		err = fmt.Errorf("entry %d: %w", r.out[len(r.out)-1].Seq, errBadPiece)
	}
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", id, err)
	}
	return r.out, nil
}
