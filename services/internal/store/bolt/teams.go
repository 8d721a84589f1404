package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
	bbolt "go.etcd.io/bbolt"
)

// Tokens live in bucket "tokens" under their ID, members in "members"
// under their principal; both are made on the first write (stores made
// before teams lack them).
var (
	bTokens  = []byte("tokens")
	bMembers = []byte("members")
)

var _ auth.Store = (*Store)(nil)

// bucket returns bucket name, creating it in a writable transaction; nil
// in a read-only one where it does not exist yet.
func bucket(tx *bbolt.Tx, name []byte) (*bbolt.Bucket, error) {
	if b := tx.Bucket(name); b != nil || !tx.Writable() {
		return b, nil
	}
	return tx.CreateBucket(name)
}

// PutToken stores a new token record.
func (s *Store) PutToken(ctx context.Context, t *auth.Token) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bTokens)
		if err != nil {
			return err
		}
		if b.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("token %s: %w", t.ID, engine.ErrConflict)
		}
		return putJSON(b, []byte(t.ID), t)
	})
}

// GetToken returns one token record.
func (s *Store) GetToken(ctx context.Context, id string) (*auth.Token, error) {
	return getRecord[auth.Token](s, bTokens, id)
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]*auth.Token, error) {
	out, err := listRecords[auth.Token](s, bTokens)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// DeleteToken removes a token.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.deleteRecord(bTokens, id)
}

// PutMember stores or replaces a member.
func (s *Store) PutMember(ctx context.Context, m *auth.Member) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bMembers)
		if err != nil {
			return err
		}
		return putJSON(b, []byte(m.Principal), m)
	})
}

// GetMember returns the member of a principal.
func (s *Store) GetMember(ctx context.Context, principal string) (*auth.Member, error) {
	return getRecord[auth.Member](s, bMembers, principal)
}

// ListMembers returns every member by principal (bbolt's key order).
func (s *Store) ListMembers(ctx context.Context) ([]*auth.Member, error) {
	return listRecords[auth.Member](s, bMembers)
}

// DeleteMember removes a member.
func (s *Store) DeleteMember(ctx context.Context, principal string) error {
	return s.deleteRecord(bMembers, principal)
}

func getRecord[T any](s *Store, name []byte, key string) (*T, error) {
	var out *T
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, _ := bucket(tx, name)
		if b == nil {
			return engine.ErrNotFound
		}
		var err error
		out, err = getJSON[T](b, []byte(key))
		return err
	})
	return out, err
}

func listRecords[T any](s *Store, name []byte) ([]*T, error) {
	var out []*T
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, _ := bucket(tx, name)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			v, err := getJSON[T](b, k)
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

func (s *Store) deleteRecord(name []byte, key string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		if b.Get([]byte(key)) == nil {
			return engine.ErrNotFound
		}
		return b.Delete([]byte(key))
	})
}

// ContainerNamespaces returns every namespace that has containers, sorted.
func (s *Store) ContainerNamespaces(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bContainers).ForEach(func(_, v []byte) error {
			var c struct {
				Namespace string `json:"namespace"`
			}
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			seen[c.Namespace] = true
			return nil
		})
	})
	return sortedKeys(seen), err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
