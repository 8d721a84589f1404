// Package auth holds who a request is: team members, their tokens and
// Google identities, their roles and namespaces (DESIGN.md decision 7,
// "Teams").
//
// A request's Identity travels in its context (WithIdentity, FromContext);
// the Docker API reads the namespace from there, so every object a request
// touches is its member's. Tokens are issued by the control plane, shown
// once and stored only as a SHA-256 hash (Store); Google ID tokens are
// verified with google.golang.org/api/idtoken and mapped to members.
//
// The package imports no store, router or Docker type: the stores
// implement Store, the control plane wires Authenticator in front of its
// handlers.
package auth
