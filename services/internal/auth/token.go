package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Store keeps tokens and members. Errors: engine.ErrNotFound for a missing
// record, engine.ErrConflict for a token ID that exists.
type Store interface {
	// PutToken stores a new token record. Returns ErrConflict if its ID
	// is taken.
	PutToken(ctx context.Context, t *Token) error
	// GetToken returns the token with ID id. Returns ErrNotFound.
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListTokens returns every token, oldest first.
	ListTokens(ctx context.Context) ([]*Token, error)
	// DeleteToken removes a token. Returns ErrNotFound.
	DeleteToken(ctx context.Context, id string) error

	// PutMember stores or replaces the member of m.Principal.
	PutMember(ctx context.Context, m *Member) error
	// GetMember returns the member of a Google principal (an email).
	// Returns ErrNotFound.
	GetMember(ctx context.Context, principal string) (*Member, error)
	// ListMembers returns every member, by principal.
	ListMembers(ctx context.Context) ([]*Member, error)
	// DeleteMember removes a member. Returns ErrNotFound.
	DeleteMember(ctx context.Context, principal string) error
}

// Token is an issued bearer token as stored: never the secret, only its
// hash.
type Token struct {
	// ID is public: lists show it and DELETE /sockerless/v1/tokens/{id}
	// takes it; it is also the token's first part.
	ID        string    `json:"id"`
	Hash      string    `json:"hash,omitempty"`
	Member    string    `json:"member"`
	Namespace string    `json:"namespace"`
	Role      Role      `json:"role"`
	Created   time.Time `json:"created"`
	// Expires is when the token stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
}

// Expired reports whether t no longer works at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Identity is who a request carrying t is.
func (t *Token) Identity() Identity {
	return Identity{Member: t.Member, Namespace: t.Namespace, Role: t.Role, TokenID: t.ID}
}

// Member maps a Google identity (a user's email, or a service account's
// email for workload identity) to a member, namespace and role.
type Member struct {
	Principal string `json:"principal"`
	Member    string `json:"member"`
	Namespace string `json:"namespace"`
	Role      Role   `json:"role"`
}

// Identity is who a request of m is.
func (m *Member) Identity() Identity {
	name := m.Member
	if name == "" {
		name = m.Principal
	}
	return Identity{Member: name, Namespace: m.Namespace, Role: m.Role}
}

// tokenPrefix starts every issued token, so a token is told apart from a
// Google ID token (a JWT) and from the bootstrap token, and secret
// scanners can find leaked ones.
const tokenPrefix = "skl_"

// NewToken makes a token for the record's member, namespace, role and
// expiry: it fills ID, Hash and Created and returns the secret token
// string, which exists nowhere else.
func NewToken(t *Token, now time.Time) (string, error) {
	id := make([]byte, 6)
	secret := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("token secret: %w", err)
	}
	t.ID = hex.EncodeToString(id)
	s := tokenPrefix + t.ID + "_" + hex.EncodeToString(secret)
	t.Hash = hashToken(s)
	t.Created = now.UTC()
	return s, nil
}

// hashToken is the stored form of a token: its SHA-256. The secret is 256
// random bits, so no slow hash is needed against guessing.
func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tokenID returns the ID part of an issued token string.
func tokenID(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "_")
	return id, ok && len(id) == 12
}

// matches reports, in constant time, whether s is t's secret.
func (t *Token) matches(s string) bool {
	return subtle.ConstantTimeCompare([]byte(hashToken(s)), []byte(t.Hash)) == 1
}
