package auth

import (
	"context"
	"fmt"
	"regexp"
)

// Role is what a member may do.
type Role string

// Roles.
const (
	// RoleAdmin may call the admin endpoints (tokens, members, gc,
	// store-stats, usage of every namespace) besides its own namespace's
	// Docker API.
	RoleAdmin Role = "admin"
	// RoleMember uses the Docker API in its namespace only.
	RoleMember Role = "member"
)

// ParseRole checks a role name; empty means RoleMember.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case "", RoleMember:
		return RoleMember, nil
	case RoleAdmin:
		return RoleAdmin, nil
	}
	return "", fmt.Errorf("role %q: want admin or member", s)
}

// DefaultNamespace is the namespace of the bootstrap admin token and of
// the unix socket's clients (engine.DefaultNamespace).
const DefaultNamespace = "default"

var namespacePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// CheckNamespace refuses a namespace name that is not 1–63 lower-case
// letters, digits, '_', '.' or '-' (it becomes part of store keys and
// function names).
func CheckNamespace(ns string) error {
	if !namespacePattern.MatchString(ns) {
		return fmt.Errorf("namespace %q: want 1 to 63 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit", ns)
	}
	return nil
}

// Identity is who sent a request.
type Identity struct {
	// Member names the person or CI job (a token's member, or a Google
	// account's email).
	Member string `json:"member"`
	// Namespace holds every object the identity creates and is all it sees.
	Namespace string `json:"namespace"`
	Role      Role   `json:"role"`
	// TokenID is the token the request carried ("" for the bootstrap
	// token, the unix socket or a Google identity); rate limits count per
	// token.
	TokenID string `json:"tokenId,omitempty"`
}

// Admin reports whether the identity has the admin role.
func (id Identity) Admin() bool { return id.Role == RoleAdmin }

// Key names the identity for per-caller limits: its token, else its member.
func (id Identity) Key() string {
	if id.TokenID != "" {
		return "token:" + id.TokenID
	}
	return "member:" + id.Member
}

type identityKey struct{}

// WithIdentity returns ctx carrying id. Code that acts for a container
// (an in-container docker.sock) passes the owning container's namespace
// this way, so nested containers are the owner's siblings.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// ForContainer returns ctx acting for container id of namespace ns: a
// request through the docker.sock of that container (DESIGN.md, the
// network plane) creates and sees what the container's owner does, as a
// member, never an admin.
func ForContainer(ctx context.Context, ns, id string) context.Context {
	return WithIdentity(ctx, Identity{Member: "container:" + id, Namespace: ns, Role: RoleMember})
}

// FromContext returns the identity in ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Namespace returns the namespace of ctx's identity, DefaultNamespace
// when there is none (a test server without authentication).
func Namespace(ctx context.Context) string {
	if id, ok := FromContext(ctx); ok && id.Namespace != "" {
		return id.Namespace
	}
	return DefaultNamespace
}
