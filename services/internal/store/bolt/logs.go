package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

// entryV1 starts a binary log entry. Entries written before it are JSON
// objects, which start with '{', so both decode.
const entryV1 = 0x01

// seqKey is a log entry's key: its sequence number, big-endian so that
// bolt's byte order is the log's order.
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// encodeEntry packs e as version byte, uvarint stream, varint Unix seconds,
// uvarint nanoseconds, then the raw data. Seq is the key, not stored.
func encodeEntry(e engine.LogEntry) []byte {
	buf := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(e.Data))
	buf = append(buf, entryV1)
	buf = binary.AppendUvarint(buf, uint64(e.Stream))
	buf = binary.AppendVarint(buf, e.Time.Unix())
	buf = binary.AppendUvarint(buf, uint64(e.Time.Nanosecond()))
	return append(buf, e.Data...)
}

var errBadEntry = errors.New("malformed log entry")

// decodeEntry reads an entry stored under seq (binary or legacy JSON). The
// data is copied: bolt's value memory is valid only inside the transaction.
func decodeEntry(seq uint64, v []byte) (engine.LogEntry, error) {
	var e engine.LogEntry
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &e); err != nil {
			return e, err
		}
		e.Seq = seq
		return e, nil
	}
	if len(v) == 0 || v[0] != entryV1 {
		return e, errBadEntry
	}
	p := v[1:]
	stream, n := binary.Uvarint(p)
	if n <= 0 {
		return e, errBadEntry
	}
	p = p[n:]
	sec, n := binary.Varint(p)
	if n <= 0 {
		return e, errBadEntry
	}
	p = p[n:]
	nsec, n := binary.Uvarint(p)
	if n <= 0 || nsec >= 1e9 {
		return e, errBadEntry
	}
	p = p[n:]
	e.Seq, e.Stream = seq, int(stream)
	e.Time = time.Unix(sec, int64(nsec)).UTC()
	e.Data = append([]byte(nil), p...)
	return e, nil
}

// AppendLogs stores entries after the last one, assigning Seq, and moves
// the container's LogSeq and Acked in the same transaction. Appends of
// many containers arriving together share one transaction and one
// fdatasync (bbolt's Batch, up to MaxBatchDelay later): with 100
// containers logging a line a second each, a transaction each spent most
// of the control plane's CPU in commits. The function may run twice (a
// batch that fails is retried one by one), so it sets out afresh.
func (s *Store) AppendLogs(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64) ([]engine.LogEntry, error) {
	out, _, err := s.AppendLogsUpdate(ctx, ns, id, entries, acked, nil)
	return out, err
}

// AppendLogsUpdate is AppendLogs and UpdateContainer(fn) in one
// transaction. An error from fn aborts both and is returned as is.
func (s *Store) AppendLogsUpdate(ctx context.Context, ns, id string, entries []engine.LogEntry, acked map[uint32]uint64, fn func(*engine.Container) error) ([]engine.LogEntry, *engine.Container, error) {
	out := make([]engine.LogEntry, len(entries))
	var updated *engine.Container
	var fnErr error
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		updated, fnErr = nil, nil
		cs := tx.Bucket(bContainers)
		raw := cs.Get([]byte(id))
		if raw == nil {
			return engine.ErrNotFound
		}
		var c *engine.Container
		var err error
		if fn == nil {
			c, err = s.heads.decode(id, raw)
		} else { // fn may change anything: a container of its own
			c, err = getJSON[engine.Container](cs, []byte(id))
		}
		if err != nil {
			return err
		}
		if c.Namespace != ns {
			return engine.ErrNotFound
		}
		lb, err := tx.Bucket(bLogs).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return err
		}
		lb.FillPercent = 1 // keys only grow: full pages, no splits in half
		for i, e := range entries {
			c.LogSeq++
			c.LogBytes += int64(len(e.Data))
			e.Seq = c.LogSeq
			if err := lb.Put(seqKey(e.Seq), encodeEntry(e)); err != nil {
				return fmt.Errorf("log %d: %w", e.Seq, err)
			}
			out[i] = e
		}
		c.MergeAcked(acked)
		if fn != nil {
			name := c.Name
			if fnErr = fn(c); fnErr != nil {
				return fnErr
			}
			if c.Name != name {
				return errors.New("a rename with an append of logs")
			}
			c.ID, c.Namespace = id, ns
		}
		data, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode %s: %w", id, err)
		}
		if err := cs.Put([]byte(id), data); err != nil {
			return err
		}
		if fn == nil {
			s.heads.put(id, data, c)
		} else {
			s.heads.drop(id) // c goes to the caller: it is not kept
		}
		updated = c
		return nil
	})
	if fnErr != nil {
		return nil, nil, fnErr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("append logs of %s: %w", id, err)
	}
	return out, updated, nil
}

// ReadLogs returns up to limit entries after seq after (limit ≤ 0: all).
func (s *Store) ReadLogs(ctx context.Context, ns, id string, after uint64, limit int) ([]engine.LogEntry, error) {
	var out []engine.LogEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		if _, err := owned(tx.Bucket(bContainers), ns, id); err != nil {
			return err
		}
		lb := tx.Bucket(bLogs).Bucket([]byte(id))
		if lb == nil || after == math.MaxUint64 {
			return nil
		}
		cur := lb.Cursor()
		for k, v := cur.Seek(seqKey(after + 1)); k != nil; k, v = cur.Next() {
			seq := binary.BigEndian.Uint64(k)
			e, err := decodeEntry(seq, v)
			if err != nil {
				return fmt.Errorf("decode log %d: %w", seq, err)
			}
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", id, err)
	}
	return out, nil
}
