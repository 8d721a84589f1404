package engine

import (
	"context"
	"log/slog"
)

// RegistryAuth is a client's credentials for one registry, as docker sends
// them (X-Registry-Auth, the body of POST /auth). They live only as long
// as the request that carried them: never stored, never logged (String
// and LogValue hide them).
type RegistryAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Empty reports whether a carries no credential.
func (a RegistryAuth) Empty() bool {
	return a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// String hides the secrets: credentials must never reach a log.
func (a RegistryAuth) String() string {
	return "RegistryAuth{username:" + a.Username + " server:" + a.ServerAddress + " secrets:redacted}"
}

// LogValue hides the secrets from slog.
func (a RegistryAuth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", a.Username), slog.String("server", a.ServerAddress))
}

type registryAuthKey struct{}

// WithRegistryAuth returns ctx carrying a client's credentials for the
// pulls made while ctx lasts (one request's).
func WithRegistryAuth(ctx context.Context, a RegistryAuth) context.Context {
	if a.Empty() {
		return ctx
	}
	return context.WithValue(ctx, registryAuthKey{}, a)
}

// RegistryAuthFrom returns the credentials WithRegistryAuth put in ctx.
func RegistryAuthFrom(ctx context.Context) (RegistryAuth, bool) {
	a, ok := ctx.Value(registryAuthKey{}).(RegistryAuth)
	return a, ok
}
