package bolt

import (
	"bytes"
	"context"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/volumes"
	bbolt "go.etcd.io/bbolt"
)

// Volume records live in bucket "volumes" under "ns\x00name".
var bVolumes = []byte("volumes")

var _ volumes.Store = (*Store)(nil)

// volumeBucket returns the volumes bucket, creating it on the first write
// (stores made before volumes existed lack it).
func volumeBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) { return bucket(tx, bVolumes) }

// GetVolume returns one volume record.
func (s *Store) GetVolume(ctx context.Context, ns, name string) (*volumes.Volume, error) {
	var v *volumes.Volume
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, _ := volumeBucket(tx)
		if b == nil {
			return engine.ErrNotFound
		}
		var err error
		v, err = getJSON[volumes.Volume](b, nameKey(ns, name))
		return err
	})
	return v, err
}

// ListVolumes returns the namespace's volumes by name.
func (s *Store) ListVolumes(ctx context.Context, ns string) ([]*volumes.Volume, error) {
	var out []*volumes.Volume
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, _ := volumeBucket(tx)
		if b == nil {
			return nil
		}
		prefix := nameKey(ns, "")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v, err := getJSON[volumes.Volume](b, k)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// UpdateVolume is a read-modify-write of one volume record.
func (s *Store) UpdateVolume(ctx context.Context, ns, name string, fn func(*volumes.Volume) (*volumes.Volume, error)) (*volumes.Volume, error) {
	var out *volumes.Volume
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := volumeBucket(tx)
		if err != nil {
			return err
		}
		out, err = upsertJSON(b, nameKey(ns, name), fn, func(v *volumes.Volume) { v.Namespace, v.Name = ns, name })
		return err
	})
	return out, err
}

// DeleteVolume deletes a volume record if check allows.
func (s *Store) DeleteVolume(ctx context.Context, ns, name string, check func(*volumes.Volume) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := volumeBucket(tx)
		if err != nil {
			return err
		}
		cur, err := getJSON[volumes.Volume](b, nameKey(ns, name))
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		return b.Delete(nameKey(ns, name))
	})
}
