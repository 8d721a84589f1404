package authn

import "context"

// Identity is who made a request, as authentication established it.
type Identity struct {
	// Member names the caller: "admin" for the bootstrap token, a
	// member's name for an issued token, "local" for the unix socket.
	Member string
	// Namespace is the caller's namespace ("" means the default).
	Namespace string
	// Role is "admin" or "member".
	Role string
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityOf returns the identity ctx carries, and whether it carries one.
func IdentityOf(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
