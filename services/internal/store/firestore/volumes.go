package firestore

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"

	"github.com/sockerless/sockerless/services/internal/volumes"
)

// Volume records are documents namespaces/{ns}/volumes/{name} holding the
// record as JSON.
const colVolumes = "volumes"

var _ volumes.Store = (*Store)(nil)

func (s *Store) volumeRef(ns, name string) *firestore.DocumentRef {
	return s.col(colNamespaces).Doc(docID(ns)).Collection(colVolumes).Doc(docID(name))
}

func volumeKey(ns, name string) string { return "v/" + ns + "/" + name }

// GetVolume returns one volume record.
func (s *Store) GetVolume(ctx context.Context, ns, name string) (*volumes.Volume, error) {
	snap, err := s.getDoc(ctx, s.volumeRef(ns, name))
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", name, err)
	}
	return decodeJSON[volumes.Volume](snap)
}

// ListVolumes returns the namespace's volumes by name (document IDs keep
// the order of names: escaping only touches bytes outside [a-zA-Z0-9_.-]).
func (s *Store) ListVolumes(ctx context.Context, ns string) ([]*volumes.Volume, error) {
	var out []*volumes.Volume
	q := s.col(colNamespaces).Doc(docID(ns)).Collection(colVolumes).OrderBy(firestore.DocumentID, firestore.Asc)
	err := s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		v, err := decodeJSON[volumes.Volume](snap)
		if err != nil {
			return true, err
		}
		out = append(out, v)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	return out, nil
}

// UpdateVolume is a read-modify-write of one volume record in a
// transaction; a new record is created with the precondition that none
// exists, so concurrent creates of one name make it once.
func (s *Store) UpdateVolume(ctx context.Context, ns, name string, fn func(*volumes.Volume) (*volumes.Volume, error)) (*volumes.Volume, error) {
	defer s.lock(volumeKey(ns, name))()
	out, err := upsertJSON(s, ctx, s.volumeRef(ns, name), fn, func(v *volumes.Volume) { v.Namespace, v.Name = ns, name })
	if err != nil {
		return nil, unwrapFn(err, "update volume %s", name)
	}
	return out, nil
}

// DeleteVolume deletes a volume record in a transaction if check allows.
func (s *Store) DeleteVolume(ctx context.Context, ns, name string, check func(*volumes.Volume) error) error {
	defer s.lock(volumeKey(ns, name))()
	err := s.runTx(ctx, func(t *txn) error {
		ref := s.volumeRef(ns, name)
		snap, err := t.get(ref)
		if err != nil {
			return err
		}
		cur, err := decodeJSON[volumes.Volume](snap)
		if err != nil {
			return fnError{err}
		}
		if err := check(cur); err != nil {
			return fnError{err}
		}
		return t.delete(ref)
	})
	return unwrapFn(err, "delete volume %s", name)
}
