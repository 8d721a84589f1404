package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// A client's registry credentials (docker login, X-Registry-Auth) arrive
// with a request and live only as long as it does (engine.RegistryAuthFrom
// on its context): they are never written anywhere. Whatever must later
// be read from a private registry without them (the function's wrap, docker
// cp of a created container, save) is therefore copied into the
// deployment's own repository during the pull, while they are in hand.

// authenticator turns a client's credentials into go-containerregistry's.
func authenticator(a engine.RegistryAuth) authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
}

// userKeychain answers with the client's credentials for the registry it
// pulls from, and with the service's own keychain for the deployment's
// repository (where pulled private images are copied).
type userKeychain struct {
	user   authn.Authenticator
	target string // the deployment repository's registry
	next   authn.Keychain
}

func (k userKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.target {
		return k.next.Resolve(r)
	}
	return k.user, nil
}

// keychain is the keychain of a call made with ctx.
func (s *Source) keychain(ctx context.Context) authn.Keychain {
	a, ok := engine.RegistryAuthFrom(ctx)
	if !ok {
		return s.cfg.Keychain
	}
	return userKeychain{user: authenticator(a), target: registryOf(s.cfg.TargetRepo), next: s.cfg.Keychain}
}

// keepPrivate copies img, pulled with the client's credentials, into the
// deployment's repository (once per digest) and returns its reference
// there, pinned by digest: later reads need no credentials.
func (s *Source) keepPrivate(ctx context.Context, from name.Reference, img v1.Image, digest v1.Hash) (string, error) {
	repo, err := name.NewRepository(s.cfg.TargetRepo, s.nameOpts(registryOf(s.cfg.TargetRepo))...)
	if err != nil {
		return "", fmt.Errorf("target repo %s: %w", s.cfg.TargetRepo, err)
	}
	key := sha256.Sum256([]byte("private\n" + from.Context().Name() + "@" + digest.String()))
	tag := repo.Tag("pulled-" + hex.EncodeToString(key[:16]))
	pinned := repo.Name() + "@" + digest.String()
	if d, err := remote.Head(tag, s.remoteOpts(ctx)...); err == nil && d.Digest == digest {
		return pinned, nil
	}
	if err := remote.Write(tag, img, s.remoteOpts(ctx)...); err != nil {
		return "", fmt.Errorf("keep %s in the deployment's repository: %w", from, err)
	}
	return pinned, nil
}

// Login checks a client's credentials against their registry (POST /auth):
// nil when the registry accepts them, a KindUnauthorized *engine.Error
// when it refuses them. Docker Hub's names ("https://index.docker.io/v1/",
// "docker.io") go to the Docker Hub mirror when one is configured.
func (s *Source) Login(ctx context.Context, a engine.RegistryAuth) error {
	host := a.ServerAddress
	for _, p := range []string{"https://", "http://"} {
		host = strings.TrimPrefix(host, p)
	}
	host, _, _ = strings.Cut(host, "/")
	if host == "" {
		host = name.DefaultRegistry
	}
	host = canonicalHost(host)
	if m, ok := s.mirrors[host]; ok {
		host = m.Host
	}
	reg, err := name.NewRegistry(host, s.nameOpts(host)...)
	if err != nil {
		return engine.Errorf(engine.KindInvalid, "invalid registry address %q: %v", a.ServerAddress, err)
	}
	auth := authenticator(a)
	base := remote.DefaultTransport
	rt, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return loginError(reg, err)
	}
	url := fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(reg, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return &engine.Error{Kind: engine.KindUnauthorized,
			Message: fmt.Sprintf("login attempt to %s failed with status: %d %s", url, resp.StatusCode, http.StatusText(resp.StatusCode))}
	}
	if resp.StatusCode != http.StatusOK {
		return &engine.Error{Kind: engine.KindUnavailable,
			Message: fmt.Sprintf("login attempt to %s failed with status: %d %s", url, resp.StatusCode, http.StatusText(resp.StatusCode))}
	}
	return nil
}

// loginError is a registry's refusal (a token exchange the registry
// refused: wrong credentials) or a failure to reach it.
func loginError(reg name.Registry, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return &engine.Error{Kind: engine.KindUnauthorized, Err: err,
			Message: fmt.Sprintf("Get \"%s://%s/v2/\": unauthorized: incorrect username or password", reg.Scheme(), reg.RegistryStr())}
	}
	return &engine.Error{Kind: engine.KindUnavailable, Err: err, Message: fmt.Sprintf("cannot reach registry %s: %v", reg.RegistryStr(), err)}
}
