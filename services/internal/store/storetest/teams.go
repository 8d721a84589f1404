package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// RunTeams runs the contract checks of auth.Store (tokens and members);
// open returns a fresh, empty store each time and closes it at cleanup.
func RunTeams(t *testing.T, open func(t *testing.T) auth.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s auth.Store)
	}{
		{"a stored token is found by ID, with its hash and expiry", testTokenRoundTrip},
		{"a token ID is not issued twice", testTokenConflict},
		{"tokens are listed oldest first and deleted once", testTokenListDelete},
		{"members are set, replaced, listed and deleted", testMembers},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func newToken(t *testing.T, member string, created time.Time) (*auth.Token, string) {
	t.Helper()
	tok := &auth.Token{Member: member, Namespace: member, Role: auth.RoleMember}
	secret, err := auth.NewToken(tok, created)
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

func testTokenRoundTrip(t *testing.T, s auth.Store) {
	ctx := t.Context()
	tok, secret := newToken(t, "alice", time.Now())
	tok.Expires = time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := s.PutToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetToken(ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.Hash != tok.Hash || got.Member != "alice" || got.Namespace != "alice" || got.Role != auth.RoleMember || !got.Expires.Equal(tok.Expires) || !got.Created.Equal(tok.Created) {
		t.Fatalf("got %+v, want %+v", got, tok)
	}
	if got.Hash == secret || got.Hash == "" {
		t.Fatalf("stored hash %q: want the secret's hash, never the secret", got.Hash)
	}
	_, err = s.GetToken(ctx, "000000000000")
	wantErr(t, err, engine.ErrNotFound)
}

func testTokenConflict(t *testing.T, s auth.Store) {
	tok, _ := newToken(t, "alice", time.Now())
	if err := s.PutToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	again := *tok
	again.Member = "mallory"
	wantErr(t, s.PutToken(t.Context(), &again), engine.ErrConflict)
	got, err := s.GetToken(t.Context(), tok.ID)
	if err != nil || got.Member != "alice" {
		t.Fatalf("after a conflicting put: %+v, %v", got, err)
	}
}

func testTokenListDelete(t *testing.T, s auth.Store) {
	ctx := t.Context()
	base := time.Now()
	var ids []string
	for i, m := range []string{"carol", "alice", "bob"} {
		tok, _ := newToken(t, m, base.Add(time.Duration(i)*time.Second))
		if err := s.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	list, err := s.ListTokens(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d tokens, %v", len(list), err)
	}
	for i, tok := range list {
		if tok.ID != ids[i] {
			t.Fatalf("list[%d] = %s, want %s (oldest first)", i, tok.ID, ids[i])
		}
	}
	if err := s.DeleteToken(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteToken(ctx, ids[1]), engine.ErrNotFound)
	_, err = s.GetToken(ctx, ids[1])
	wantErr(t, err, engine.ErrNotFound)
	if list, _ := s.ListTokens(ctx); len(list) != 2 {
		t.Fatalf("after delete: %d tokens, want 2", len(list))
	}
}

func testMembers(t *testing.T, s auth.Store) {
	ctx := t.Context()
	if list, err := s.ListMembers(ctx); err != nil || len(list) != 0 {
		t.Fatalf("empty store lists %v, %v", list, err)
	}
	_, err := s.GetMember(ctx, "alice@example.com")
	wantErr(t, err, engine.ErrNotFound)
	for _, m := range []auth.Member{
		{Principal: "bob@example.com", Namespace: "bob", Role: auth.RoleMember},
		{Principal: "alice@example.com", Namespace: "alice", Role: auth.RoleMember},
		{Principal: "alice@example.com", Member: "Alice", Namespace: "team", Role: auth.RoleAdmin},
	} {
		if err := s.PutMember(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetMember(ctx, "alice@example.com")
	if err != nil || got.Namespace != "team" || got.Role != auth.RoleAdmin || got.Member != "Alice" {
		t.Fatalf("replaced member = %+v, %v", got, err)
	}
	list, err := s.ListMembers(ctx)
	if err != nil || len(list) != 2 || list[0].Principal != "alice@example.com" || list[1].Principal != "bob@example.com" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := s.DeleteMember(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteMember(ctx, "bob@example.com"), engine.ErrNotFound)
}

// NamespaceStore is a store that lists the namespaces holding containers
// (a control plane recovers each at start, whether or not a token or
// member still names it).
type NamespaceStore interface {
	engine.Store
	ContainerNamespaces(ctx context.Context) ([]string, error)
}

// RunNamespaces checks ContainerNamespaces; open returns a fresh store.
func RunNamespaces(t *testing.T, open func(t *testing.T) NamespaceStore) {
	t.Run("namespaces with containers are listed once, sorted", func(t *testing.T) {
		s := open(t)
		if got, err := s.ContainerNamespaces(t.Context()); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v, %v", got, err)
		}
		for i, ns := range []string{"bob", "alice", "bob", "default"} {
			mustCreate(t, s, NewContainer(ns, fmt.Sprintf("c%d", i), fmt.Sprintf("n%d", i)))
		}
		got, err := s.ContainerNamespaces(t.Context())
		if err != nil || strings.Join(got, ",") != "alice,bob,default" {
			t.Fatalf("namespaces %v, %v", got, err)
		}
		if err := s.DeleteContainer(t.Context(), "alice", "c1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ContainerNamespaces(t.Context()); strings.Join(got, ",") != "bob,default" {
			t.Fatalf("after alice's only container went: %v", got)
		}
	})
}
