package firestore

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Tokens are documents tokens/{id}, members members/{principal}, each
// holding the record as JSON (a token's hash, never its secret).
const (
	colTokens  = "tokens"
	colMembers = "members"
)

var _ auth.Store = (*Store)(nil)

// PutToken stores a new token record; Create fails if the ID exists.
func (s *Store) PutToken(ctx context.Context, t *auth.Token) error {
	d, err := encodeJSON(t)
	if err != nil {
		return err
	}
	err = s.runTx(ctx, func(x *txn) error { return x.create(s.col(colTokens).Doc(docID(t.ID)), d) })
	if isCode(err, codes.AlreadyExists) {
		return fmt.Errorf("token %s: %w", t.ID, engine.ErrConflict)
	}
	return err
}

// GetToken returns one token record.
func (s *Store) GetToken(ctx context.Context, id string) (*auth.Token, error) {
	return getRecord[auth.Token](ctx, s, colTokens, id)
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]*auth.Token, error) {
	out, err := listRecords[auth.Token](ctx, s, colTokens)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// DeleteToken removes a token.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.deleteRecord(ctx, colTokens, id)
}

// PutMember stores or replaces a member.
func (s *Store) PutMember(ctx context.Context, m *auth.Member) error {
	d, err := encodeJSON(m)
	if err != nil {
		return err
	}
	return s.runTx(ctx, func(x *txn) error { return x.set(s.col(colMembers).Doc(docID(m.Principal)), d) })
}

// GetMember returns the member of a principal.
func (s *Store) GetMember(ctx context.Context, principal string) (*auth.Member, error) {
	return getRecord[auth.Member](ctx, s, colMembers, principal)
}

// ListMembers returns every member by principal.
func (s *Store) ListMembers(ctx context.Context) ([]*auth.Member, error) {
	return listRecords[auth.Member](ctx, s, colMembers)
}

// DeleteMember removes a member.
func (s *Store) DeleteMember(ctx context.Context, principal string) error {
	return s.deleteRecord(ctx, colMembers, principal)
}

func getRecord[T any](ctx context.Context, s *Store, col, key string) (*T, error) {
	snap, err := s.getDoc(ctx, s.col(col).Doc(docID(key)))
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", col, key, err)
	}
	return decodeJSON[T](snap)
}

func listRecords[T any](ctx context.Context, s *Store, col string) ([]*T, error) {
	var out []*T
	q := s.col(col).OrderBy(firestore.DocumentID, firestore.Asc)
	err := s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		v, err := decodeJSON[T](snap)
		if err != nil {
			return true, err
		}
		out = append(out, v)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", col, err)
	}
	return out, nil
}

// deleteRecord deletes a document that must exist (ErrNotFound if not).
func (s *Store) deleteRecord(ctx context.Context, col, key string) error {
	err := s.runTx(ctx, func(x *txn) error {
		ref := s.col(col).Doc(docID(key))
		snap, err := x.get(ref)
		if err != nil {
			return err
		}
		if !snap.Exists() {
			return fnError{engine.ErrNotFound}
		}
		return x.delete(ref)
	})
	return unwrapFn(err, "delete %s %s", col, key)
}

// ContainerNamespaces returns every namespace that has containers, sorted:
// the namespace documents (listed with those that only hold collections,
// as most do), then one query of each one's containers limited to one
// (for a control plane's start). Plain collection queries: no collection
// group index is needed.
func (s *Store) ContainerNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	it := s.col(colNamespaces).DocumentRefs(ctx)
	for {
		ref, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		s.countReads(1)
		err = s.query(ctx, ref.Collection(colContainers).Select("ns").Limit(1), func(snap *firestore.DocumentSnapshot) (bool, error) {
			if ns, ok := snap.Data()["ns"].(string); ok {
				out = append(out, ns)
			}
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
	}
	sort.Strings(out)
	return out, nil
}
