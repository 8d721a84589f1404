package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

// PutImage stores img; its repo tags and digests move to it from any other
// image that had them.
func (s *Store) PutImage(ctx context.Context, img *engine.Image) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ims, refs := tx.Bucket(bImages), tx.Bucket(bRefs)
		for _, ref := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			prev := refs.Get([]byte(ref))
			if prev != nil && string(prev) != img.ID {
				other, err := getJSON[engine.Image](ims, prev)
				if err == nil {
					other.RepoTags = without(other.RepoTags, ref)
					other.RepoDigests = without(other.RepoDigests, ref)
					if err := putJSON(ims, prev, other); err != nil {
						return err
					}
				}
			}
			if err := refs.Put([]byte(ref), []byte(img.ID)); err != nil {
				return err
			}
		}
		if old, err := getJSON[engine.Image](ims, []byte(img.ID)); err == nil {
			// keep refs the image already had (another tag of the same image)
			img.RepoTags = union(old.RepoTags, img.RepoTags, refs, img.ID)
			img.RepoDigests = union(old.RepoDigests, img.RepoDigests, refs, img.ID)
		}
		return putJSON(ims, []byte(img.ID), img)
	})
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

// union keeps old refs that still point at id, then adds new ones.
func union(old, add []string, refs *bbolt.Bucket, id string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range old {
		if string(refs.Get([]byte(r))) == id && !seen[r] {
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

// GetImage finds an image by ID, bare hex ID, ID prefix, tag or digest ref.
func (s *Store) GetImage(ctx context.Context, ref string) (*engine.Image, error) {
	var img *engine.Image
	err := s.db.View(func(tx *bbolt.Tx) error {
		ims := tx.Bucket(bImages)
		if id := tx.Bucket(bRefs).Get([]byte(ref)); id != nil {
			var err error
			img, err = getJSON[engine.Image](ims, id)
			return err
		}
		hex := strings.TrimPrefix(ref, "sha256:")
		if hex == "" || strings.Trim(hex, "0123456789abcdef") != "" {
			return engine.ErrNotFound
		}
		prefix := []byte("sha256:" + hex)
		cur := ims.Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if img != nil {
				return engine.ErrAmbiguous
			}
			var i engine.Image
			if err := json.Unmarshal(v, &i); err != nil {
				return fmt.Errorf("decode image %s: %w", k, err)
			}
			img = &i
		}
		if img == nil {
			return engine.ErrNotFound
		}
		return nil
	})
	return img, err
}

// ListImages returns every image, newest first.
func (s *Store) ListImages(ctx context.Context) ([]*engine.Image, error) {
	var out []*engine.Image
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bImages).ForEach(func(k, v []byte) error {
			var i engine.Image
			if err := json.Unmarshal(v, &i); err != nil {
				return fmt.Errorf("decode image %s: %w", k, err)
			}
			out = append(out, &i)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// UntagImage takes ref from image id and frees it.
func (s *Store) UntagImage(ctx context.Context, id, ref string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ims, refs := tx.Bucket(bImages), tx.Bucket(bRefs)
		img, err := getJSON[engine.Image](ims, []byte(id))
		if err != nil {
			return err
		}
		if string(refs.Get([]byte(ref))) == id {
			if err := refs.Delete([]byte(ref)); err != nil {
				return err
			}
		}
		img.RepoTags = without(img.RepoTags, ref)
		img.RepoDigests = without(img.RepoDigests, ref)
		return putJSON(ims, []byte(id), img)
	})
}

// DeleteImage removes an image and its refs.
func (s *Store) DeleteImage(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		ims, refs := tx.Bucket(bImages), tx.Bucket(bRefs)
		img, err := getJSON[engine.Image](ims, []byte(id))
		if err != nil {
			return err
		}
		for _, r := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			if string(refs.Get([]byte(r))) == id {
				if err := refs.Delete([]byte(r)); err != nil {
					return err
				}
			}
		}
		return ims.Delete([]byte(id))
	})
}
