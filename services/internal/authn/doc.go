// Package authn holds the small pieces every authenticated listener of the
// control plane shares, kept apart from what a token means (members,
// namespaces, roles):
//
//   - Bearer parses "Authorization: Bearer <token>" the one way both the
//     Docker API and the agent hub accept it;
//   - Exempt decides whether a request may skip the client token (agent
//     dials) on the path the router will see, so an encoded or unclean path
//     cannot reach the Docker router without a token;
//   - Failures slows, logs and closes failed authentications per source;
//   - WithIdentity / IdentityOf carry who a request is (the audit trail's
//     "who") in its context.
//
// Files: bearer.go, path.go, failures.go, identity.go.
package authn
