package firestore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// jsonDoc is an image or function document: the record as JSON.
type jsonDoc struct {
	JSON string `firestore:"json"`
}

// refDoc maps a repo tag or digest to an image ID.
type refDoc struct {
	ID string `firestore:"id"`
}

func (s *Store) imageRef(id string) *firestore.DocumentRef { return s.col(colImages).Doc(docID(id)) }
func (s *Store) refRef(ref string) *firestore.DocumentRef  { return s.col(colRefs).Doc(docID(ref)) }

// decodeJSON decodes a jsonDoc snapshot into a T; ErrNotFound if missing.
func decodeJSON[T any](snap *firestore.DocumentSnapshot) (*T, error) {
	if snap == nil || !snap.Exists() {
		return nil, engine.ErrNotFound
	}
	var d jsonDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("decode %s: %w", snap.Ref.ID, err)
	}
	var out T
	if err := json.Unmarshal([]byte(d.JSON), &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", snap.Ref.ID, err)
	}
	return &out, nil
}

// upsertJSON is a read-modify-write of the JSON record at ref in a
// transaction: fn gets the record (nil if there is none) and returns the
// new one (nil: no change), which fill completes with its identity. A new
// record is created with the precondition that none exists, so of
// concurrent creates exactly one commits; a lost create race is tried
// again, and fn then sees the winner's record.
func upsertJSON[T any](s *Store, ctx context.Context, ref *firestore.DocumentRef, fn func(*T) (*T, error), fill func(*T)) (*T, error) {
	var out *T
	var err error
	for range 3 {
		err = s.runTx(ctx, func(t *txn) error {
			snap, err := t.get(ref)
			if err != nil {
				return err
			}
			var cur *T
			if snap.Exists() {
				if cur, err = decodeJSON[T](snap); err != nil {
					return err
				}
			}
			next, err := fn(cur)
			if err != nil {
				return fnError{err}
			}
			if next == nil {
				out = cur
				return nil
			}
			fill(next)
			out = next
			d, err := encodeJSON(next)
			if err != nil {
				return err
			}
			if cur == nil {
				return t.create(ref, d)
			}
			return t.set(ref, d)
		})
		if !isCode(err, codes.AlreadyExists) {
			break
		}
	}
	return out, err
}

func encodeJSON(v any) (jsonDoc, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return jsonDoc{}, fmt.Errorf("encode: %w", err)
	}
	return jsonDoc{JSON: string(data)}, nil
}

// refTarget returns the image ID a ref snapshot names ("" if none).
func refTarget(snap *firestore.DocumentSnapshot) string {
	if !snap.Exists() {
		return ""
	}
	var r refDoc
	if snap.DataTo(&r) != nil {
		return ""
	}
	return r.ID
}

func imageRefs(img *engine.Image) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// PutImage stores img; its repo tags and digests move to it from any other
// image that had them. One transaction reads the image, the refs involved
// and the images losing a ref, then writes only what changes.
func (s *Store) PutImage(ctx context.Context, img *engine.Image) error {
	defer s.lock(imagesKey)()
	var stored *engine.Image
	err := s.runTx(ctx, func(t *txn) error {
		next := *img
		newRefs := imageRefs(img)
		snap, err := t.get(s.imageRef(img.ID))
		if err != nil {
			return err
		}
		old, err := decodeJSON[engine.Image](snap)
		if err != nil && old == nil && snap.Exists() {
			return err
		}
		all := newRefs
		if old != nil {
			all = imageRefs(&engine.Image{RepoTags: append(append([]string{}, newRefs...), old.RepoTags...), RepoDigests: old.RepoDigests})
		}
		refSnaps, err := t.getAll(refsOf(s, all)...)
		if err != nil {
			return err
		}
		target := map[string]string{}
		for i, r := range all {
			target[r] = refTarget(refSnaps[i])
		}
		// The other images that lose a ref to this one.
		losing := map[string][]string{}
		var otherIDs []string
		for _, r := range newRefs {
			if id := target[r]; id != "" && id != img.ID {
				if losing[id] == nil {
					otherIDs = append(otherIDs, id)
				}
				losing[id] = append(losing[id], r)
			}
		}
		otherRefs := make([]*firestore.DocumentRef, len(otherIDs))
		for i, id := range otherIDs {
			otherRefs[i] = s.imageRef(id)
		}
		others, err := t.getAll(otherRefs...)
		if err != nil {
			return err
		}
		for i, id := range otherIDs {
			other, err := decodeJSON[engine.Image](others[i])
			if err != nil {
				continue // a dangling ref: just take it over
			}
			for _, r := range losing[id] {
				other.RepoTags = without(other.RepoTags, r)
				other.RepoDigests = without(other.RepoDigests, r)
			}
			d, err := encodeJSON(other)
			if err != nil {
				return err
			}
			if err := t.set(s.imageRef(id), d); err != nil {
				return err
			}
		}
		for _, r := range newRefs {
			if target[r] != img.ID {
				if err := t.set(s.refRef(r), refDoc{ID: img.ID}); err != nil {
					return err
				}
			}
		}
		if old != nil { // keep refs the image already had (another tag of it)
			keep := func(r string) bool { return target[r] == img.ID }
			next.RepoTags = union(old.RepoTags, img.RepoTags, keep)
			next.RepoDigests = union(old.RepoDigests, img.RepoDigests, keep)
		}
		d, err := encodeJSON(&next)
		if err != nil {
			return err
		}
		stored = &next
		return t.set(s.imageRef(img.ID), d)
	})
	if err != nil {
		return fmt.Errorf("put image %s: %w", img.ID, err)
	}
	img.RepoTags, img.RepoDigests = stored.RepoTags, stored.RepoDigests
	for _, r := range imageRefs(img) {
		s.refIDs.PutIf(s.refIDs.Gen(), r, img.ID)
	}
	return nil
}

func refsOf(s *Store, refs []string) []*firestore.DocumentRef {
	out := make([]*firestore.DocumentRef, len(refs))
	for i, r := range refs {
		out[i] = s.refRef(r)
	}
	return out
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// union keeps old refs that still point at the image, then adds new ones.
func union(old, add []string, keep func(string) bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range old {
		if keep(r) && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, r := range add {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// GetImage finds an image by tag or digest ref (a ref document), or by
// ID, bare hex ID or ID prefix (a range query on the document ID).
func (s *Store) GetImage(ctx context.Context, ref string) (*engine.Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("image %q: %w", ref, engine.ErrNotFound)
	}
	if isFullID(ref) { // an ID is no ref: one read of its document
		snap, err := s.getDoc(ctx, s.imageRef(ref))
		if err != nil {
			return nil, fmt.Errorf("get image %s: %w", ref, err)
		}
		if !snap.Exists() {
			return nil, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
		}
		img, err := decodeJSON[engine.Image](snap)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		return img, nil
	}
	// A ref is read with the image it named last time, in one call: it
	// usually still names it (a tag moves on a pull or a tag, rarely).
	var snap, isnap *firestore.DocumentSnapshot
	guess, _ := s.refIDs.Get(ref)
	if guess != "" {
		snaps, err := s.getDocs(ctx, s.refRef(ref), s.imageRef(guess))
		if err != nil {
			return nil, fmt.Errorf("get image %s: %w", ref, err)
		}
		snap, isnap = snaps[0], snaps[1]
	} else {
		var err error
		if snap, err = s.getDoc(ctx, s.refRef(ref)); err != nil {
			return nil, fmt.Errorf("get image %s: %w", ref, err)
		}
	}
	if id := refTarget(snap); id != "" {
		if id != guess {
			var err error
			if isnap, err = s.getDoc(ctx, s.imageRef(id)); err != nil {
				return nil, fmt.Errorf("get image %s: %w", ref, err)
			}
		}
		img, err := decodeJSON[engine.Image](isnap)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		s.refIDs.PutIf(s.refIDs.Gen(), ref, id)
		return img, nil
	}
	s.refIDs.Drop(ref)
	hex := strings.TrimPrefix(ref, "sha256:")
	if hex == "" || strings.Trim(hex, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
	}
	ims := s.col(colImages)
	prefix := docID("sha256:" + hex)
	q := ims.Where(firestore.DocumentID, ">=", ims.Doc(prefix)).
		Where(firestore.DocumentID, "<", ims.Doc(prefix+prefixEnd)).
		Limit(2)
	var found []*engine.Image
	err := s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		img, err := decodeJSON[engine.Image](snap)
		if err != nil {
			return true, err
		}
		found = append(found, img)
		return false, nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get image %s: %w", ref, err)
	case len(found) == 0:
		return nil, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
	case len(found) > 1:
		return nil, fmt.Errorf("image prefix %s: %w", ref, engine.ErrAmbiguous)
	}
	return found[0], nil
}

// ListImages returns every image, newest first.
func (s *Store) ListImages(ctx context.Context) ([]*engine.Image, error) {
	var out []*engine.Image
	err := s.query(ctx, s.col(colImages).Query, func(snap *firestore.DocumentSnapshot) (bool, error) {
		img, err := decodeJSON[engine.Image](snap)
		if err != nil {
			return true, err
		}
		out = append(out, img)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// UntagImage takes ref from image id and frees it, in one transaction.
func (s *Store) UntagImage(ctx context.Context, id, ref string) error {
	defer s.lock(imagesKey)()
	err := s.runTx(ctx, func(t *txn) error {
		snaps, err := t.getAll(s.imageRef(id), s.refRef(ref))
		if err != nil {
			return err
		}
		img, err := decodeJSON[engine.Image](snaps[0])
		if err != nil {
			return err
		}
		if refTarget(snaps[1]) == id {
			if err := t.delete(s.refRef(ref)); err != nil {
				return err
			}
		}
		img.RepoTags = without(img.RepoTags, ref)
		img.RepoDigests = without(img.RepoDigests, ref)
		d, err := encodeJSON(img)
		if err != nil {
			return err
		}
		return t.set(s.imageRef(id), d)
	})
	if err != nil {
		return fmt.Errorf("untag image %s: %w", id, err)
	}
	return nil
}

// DeleteImage removes an image and the refs that name it.
func (s *Store) DeleteImage(ctx context.Context, id string) error {
	defer s.lock(imagesKey)()
	err := s.runTx(ctx, func(t *txn) error {
		ref := s.imageRef(id)
		snap, err := t.get(ref)
		if err != nil {
			return err
		}
		img, err := decodeJSON[engine.Image](snap)
		if err != nil {
			return err
		}
		refs := imageRefs(img)
		snaps, err := t.getAll(refsOf(s, refs)...)
		if err != nil {
			return err
		}
		for i, r := range refs {
			if refTarget(snaps[i]) == id {
				if err := t.delete(s.refRef(r)); err != nil {
					return err
				}
			}
		}
		return t.delete(ref)
	})
	if err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	return nil
}

// isFullID reports whether ref is a whole image ID, "sha256:" and 64 hex
// digits.
func isFullID(ref string) bool {
	hex, ok := strings.CutPrefix(ref, "sha256:")
	return ok && len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == ""
}

// refIDsTTL is how long a ref's last image ID serves as the guess of
// GetImage's one-call read.
const refIDsTTL = time.Hour
