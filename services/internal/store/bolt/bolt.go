package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

var (
	bContainers = []byte("containers")
	bNames      = []byte("names")
	bImages     = []byte("images")
	bRefs       = []byte("refs")
	bFunctions  = []byte("functions")
	bLogs       = []byte("logs")
	bEvents     = []byte("events")
	bNetworks   = []byte("networks")
	bNetNames   = []byte("netnames")
	bSubnets    = []byte("subnets")
)

// Options tune the store.
type Options struct {
	// NoSync skips fsync on commit: for benchmarks and throwaway tests only.
	NoSync bool
}

// Store is engine.Store on a bbolt file.
type Store struct {
	db    *bbolt.DB
	heads heads // records AppendLogs wrote, decoded
}

var _ engine.Store = (*Store)(nil)

// Open opens (creating if needed) the store at path. A second process
// opening the same file fails after 2 s instead of waiting forever.
func Open(path string, opts ...Options) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open bolt store %s: %w", path, err)
	}
	for _, o := range opts {
		db.NoSync = db.NoSync || o.NoSync
	}
	// Batched appends (AppendLogs) wait this long for company: short, as
	// a lone container's output waits it too; under load the commit in
	// progress gathers the next batch anyway.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bContainers, bNames, bImages, bRefs, bFunctions, bLogs, bEvents, bNetworks, bNetNames, bSubnets} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init bolt store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func nameKey(ns, name string) []byte { return []byte(ns + "\x00" + strings.TrimPrefix(name, "/")) }

func getJSON[T any](b *bbolt.Bucket, key []byte) (*T, error) {
	v := b.Get(key)
	if v == nil {
		return nil, engine.ErrNotFound
	}
	var out T
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return &out, nil
}

// upsertJSON is a read-modify-write of the JSON record at key in b: fn
// gets the record (nil if there is none) and returns the new one (nil: no
// change), which fill completes with its identity.
func upsertJSON[T any](b *bbolt.Bucket, key []byte, fn func(*T) (*T, error), fill func(*T)) (*T, error) {
	cur, err := getJSON[T](b, key)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return cur, nil
	}
	fill(next)
	return next, putJSON(b, key, next)
}

func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

// owned reads container id if it belongs to namespace ns.
func owned(cs *bbolt.Bucket, ns, id string) (*engine.Container, error) {
	c, err := getJSON[engine.Container](cs, []byte(id))
	if err != nil {
		return nil, err
	}
	if c.Namespace != ns {
		return nil, engine.ErrNotFound
	}
	return c, nil
}

// CreateContainer stores c and reserves its name.
func (s *Store) CreateContainer(ctx context.Context, c *engine.Container) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		cs, names := tx.Bucket(bContainers), tx.Bucket(bNames)
		if cs.Get([]byte(c.ID)) != nil {
			return fmt.Errorf("container id %s: %w", c.ID, engine.ErrConflict)
		}
		nk := nameKey(c.Namespace, c.Name)
		if names.Get(nk) != nil {
			return fmt.Errorf("name %q: %w", c.Name, engine.ErrConflict)
		}
		if err := names.Put(nk, []byte(c.ID)); err != nil {
			return err
		}
		return putJSON(cs, []byte(c.ID), c)
	})
}

// getContainer resolves ref inside a transaction.
func getContainer(tx *bbolt.Tx, ns, ref string) (*engine.Container, error) {
	cs := tx.Bucket(bContainers)
	if c, err := getJSON[engine.Container](cs, []byte(ref)); err == nil && c.Namespace == ns {
		return c, nil
	}
	if id := tx.Bucket(bNames).Get(nameKey(ns, ref)); id != nil {
		return getJSON[engine.Container](cs, id)
	}
	if ref == "" {
		return nil, engine.ErrNotFound
	}
	var found *engine.Container
	cur := cs.Cursor()
	for k, v := cur.Seek([]byte(ref)); k != nil && bytes.HasPrefix(k, []byte(ref)); k, v = cur.Next() {
		var c engine.Container
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("decode %s: %w", k, err)
		}
		if c.Namespace != ns {
			continue
		}
		if found != nil {
			return nil, engine.ErrAmbiguous
		}
		found = &c
	}
	if found == nil {
		return nil, engine.ErrNotFound
	}
	return found, nil
}

// GetContainer finds a container by ID, name or unique ID prefix.
func (s *Store) GetContainer(ctx context.Context, ns, ref string) (*engine.Container, error) {
	var c *engine.Container
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		c, err = getContainer(tx, ns, ref)
		return err
	})
	return c, err
}

// ListContainers returns the namespace's containers, newest first.
func (s *Store) ListContainers(ctx context.Context, ns string) ([]*engine.Container, error) {
	var out []*engine.Container
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bContainers).ForEach(func(k, v []byte) error {
			var c engine.Container
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if c.Namespace == ns {
				out = append(out, &c)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// UpdateContainer is a read-modify-write of one container.
func (s *Store) UpdateContainer(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, error) {
	var out *engine.Container
	err := s.db.Update(func(tx *bbolt.Tx) error {
		cs := tx.Bucket(bContainers)
		c, err := owned(cs, ns, id)
		if err != nil {
			return err
		}
		oldName := c.Name
		if err := fn(c); err != nil {
			return err
		}
		if c.Name != oldName {
			names := tx.Bucket(bNames)
			nk := nameKey(ns, c.Name)
			if names.Get(nk) != nil {
				return fmt.Errorf("name %q: %w", c.Name, engine.ErrConflict)
			}
			if err := names.Delete(nameKey(ns, oldName)); err != nil {
				return err
			}
			if err := names.Put(nk, []byte(c.ID)); err != nil {
				return err
			}
		}
		c.ID, c.Namespace = id, ns
		out = c
		return putJSON(cs, []byte(id), c)
	})
	return out, err
}

// DeleteContainer removes a container, its name and its logs.
func (s *Store) DeleteContainer(ctx context.Context, ns, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		cs := tx.Bucket(bContainers)
		c, err := owned(cs, ns, id)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bNames).Delete(nameKey(ns, c.Name)); err != nil {
			return err
		}
		logs := tx.Bucket(bLogs)
		if logs.Bucket([]byte(id)) != nil {
			if err := logs.DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		s.heads.drop(id)
		return cs.Delete([]byte(id))
	})
}
