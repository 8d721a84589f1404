package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// AgentPath is where the agent lives inside every wrapped image.
const AgentPath = "/.sockerless/agent"

// Config says where images come from and go.
type Config struct {
	// Mirrors maps a registry host ("docker.io") to a base URL serving it;
	// an http:// URL is reached in plain HTTP.
	Mirrors map[string]string
	// TargetRepo is the repository wrapped images are pushed to.
	TargetRepo string
	// AgentBinary is the static agent binary put at AgentPath.
	AgentBinary string
	// Insecure reaches TargetRepo in plain HTTP.
	Insecure bool
	// Keychain authenticates to registries; nil means authn.DefaultKeychain.
	Keychain authn.Keychain
	// Allow lists the registries references may name; empty allows any
	// (see Source.allowed).
	Allow []string
}

// Source is engine.ImageSource on registries.
type Source struct {
	cfg      Config
	mirrors  map[string]*url.URL
	insecure map[string]bool // registry hosts reached in plain HTTP

	agentMu sync.Mutex
	agent   *agentLayer // made on first use, then kept: the binary does not change
}

var _ engine.ImageSource = (*Source)(nil)

// New checks cfg and returns a Source.
func New(cfg Config) (*Source, error) {
	if cfg.TargetRepo == "" {
		return nil, errors.New("images: TargetRepo is required")
	}
	if cfg.Keychain == nil {
		cfg.Keychain = authn.DefaultKeychain
	}
	s := &Source{cfg: cfg, mirrors: map[string]*url.URL{}, insecure: map[string]bool{}}
	for host, raw := range cfg.Mirrors {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("images: mirror %s=%s: want http(s)://host[:port]", host, raw)
		}
		s.mirrors[canonicalHost(host)] = u
		if u.Scheme == "http" {
			s.insecure[u.Host] = true
		}
	}
	if cfg.Insecure {
		if r, err := name.NewRepository(cfg.TargetRepo, name.Insecure); err == nil {
			s.insecure[r.RegistryStr()] = true
		}
	}
	return s, nil
}

// canonicalHost names Docker Hub one way.
func canonicalHost(h string) string {
	if h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return h
}

// options for reaching a registry host.
func (s *Source) nameOpts(host string) []name.Option {
	if s.insecure[host] {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (s *Source) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(s.keychain(ctx)),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
	}
}

// resolve maps a user's reference to the reference actually fetched.
func (s *Source) resolve(ref string) (user name.Reference, fetch name.Reference, err error) {
	user, err = name.ParseReference(ref)
	if err != nil {
		return nil, nil, engine.Errorf(engine.KindInvalid, "invalid reference format: %s", ref)
	}
	if err := s.allowed(user); err != nil {
		return nil, nil, err
	}
	host := canonicalHost(user.Context().RegistryStr())
	m, ok := s.mirrors[host]
	if !ok {
		return user, user, nil
	}
	repo := m.Host + strings.TrimSuffix(m.Path, "/") + "/" + user.Context().RepositoryStr()
	sep := ":"
	if _, isDigest := user.(name.Digest); isDigest {
		sep = "@"
	}
	fetch, err = name.ParseReference(repo+sep+user.Identifier(), s.nameOpts(m.Host)...)
	if err != nil {
		return nil, nil, fmt.Errorf("mirror reference for %s: %w", ref, err)
	}
	return user, fetch, nil
}

// get resolves ref and reads its manifest's descriptor from the registry
// (the user's reference, the one fetched, and the descriptor).
func (s *Source) get(ctx context.Context, ref string) (user, fetch name.Reference, desc *remote.Descriptor, err error) {
	user, fetch, err = s.resolve(ref)
	if err != nil {
		return nil, nil, nil, err
	}
	desc, err = remote.Get(fetch, s.remoteOpts(ctx)...)
	if err != nil {
		return nil, nil, nil, pullError(user, err)
	}
	return user, fetch, desc, nil
}

// Pull reads an image's metadata (config, digests) from its registry.
func (s *Source) Pull(ctx context.Context, ref string) (*engine.Image, error) {
	user, fetch, desc, err := s.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", ref, err)
	}
	manDigest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("manifest digest of %s: %w", ref, err)
	}
	source := fetch.Context().Name() + "@" + manDigest.String()
	if _, private := engine.RegistryAuthFrom(ctx); private {
		if source, err = s.keepPrivate(ctx, fetch, img, manDigest); err != nil {
			return nil, err
		}
	}
	out, err := record(img, source)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	familiar := familiarName(user)
	out.RepoDigests = []string{familiar + "@" + desc.Digest.String()}
	if t, ok := user.(name.Tag); ok {
		out.RepoTags = []string{familiar + ":" + t.TagStr()}
	}
	return out, nil
}

// familiarName is docker's short repository name ("busybox", "me/app").
func familiarName(ref name.Reference) string {
	n, err := reference.ParseNormalizedNamed(ref.Context().Name())
	if err != nil {
		return ref.Context().Name()
	}
	return reference.FamiliarName(n)
}

// agentLayer returns the agent layer, made once per Source (a failure is
// not kept: the next Wrap tries again).
func (s *Source) agentLayer() (*agentLayer, error) {
	s.agentMu.Lock()
	defer s.agentMu.Unlock()
	if s.agent == nil {
		al, err := buildAgentLayer(s.cfg.AgentBinary)
		if err != nil {
			return nil, err
		}
		s.agent = al
	}
	return s.agent, nil
}

// Warm gets Wrap ready ahead of its first call: it builds the agent layer
// and puts it in TargetRepo (unless it is there), so that the first wrap of
// a never-seen image pushes only the image's own layers and manifest.
func (s *Source) Warm(ctx context.Context) error {
	agent, err := s.agentLayer()
	if err != nil {
		return fmt.Errorf("warm: %w", err)
	}
	repo, err := s.targetRepo()
	if err != nil {
		return err
	}
	if err := remote.WriteLayer(repo, agent.layer, s.remoteOpts(ctx)...); err != nil {
		return fmt.Errorf("warm: push the agent layer to %s: %w", repo, err)
	}
	return nil
}

// Wrap pushes img + the agent layer (agent as entrypoint) to TargetRepo,
// unless an earlier Wrap of the same image and agent already did.
func (s *Source) Wrap(ctx context.Context, img *engine.Image) (string, error) {
	agent, err := s.agentLayer()
	if err != nil {
		return "", fmt.Errorf("wrap %s: %w", img.ID, err)
	}
	key := wrapKey(img.Source, agent.sum)
	repo, err := name.NewRepository(s.cfg.TargetRepo, s.nameOpts(registryOf(s.cfg.TargetRepo))...)
	if err != nil {
		return "", fmt.Errorf("target repo %s: %w", s.cfg.TargetRepo, err)
	}
	tag := repo.Tag(hex.EncodeToString(key[:16]))
	if d, err := remote.Head(tag, s.remoteOpts(ctx)...); err == nil {
		return repo.Name() + "@" + d.Digest.String(), nil
	}
	base, err := s.image(ctx, img)
	if err != nil {
		return "", err
	}
	wrapped, err := mutate.AppendLayers(base, agent.layer)
	if err != nil {
		return "", fmt.Errorf("append agent layer: %w", err)
	}
	cf, err := wrapped.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("config of %s: %w", img.Source, err)
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint = agent.entrypoint
	cf.Config.Cmd = nil
	// The agent runs as root to set up mounts and runs the container's
	// processes as the image's (or the container's) user itself.
	cf.Config.User = ""
	cf.Config.Healthcheck = nil
	// The agent runs as root whatever the image's USER: it binds the
	// embedded DNS on port 53 and rewrites /etc/hosts and resolv.conf, and
	// runs the container's processes as the container's user itself.
	cf.Config.User = ""
	if wrapped, err = mutate.ConfigFile(wrapped, cf); err != nil {
		return "", fmt.Errorf("set agent entrypoint: %w", err)
	}
	if err := remote.Write(tag, wrapped, s.remoteOpts(ctx)...); err != nil {
		return "", fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := wrapped.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of %s: %w", tag, err)
	}
	return repo.Name() + "@" + d.String(), nil
}

// wrapVersion names how Wrap transforms an image; change it when Wrap's
// output changes so that earlier wrapped images are not reused.
const wrapVersion = "sockerless-wrap/2"

// wrapKey is the content hash naming a wrapped image: the base image's
// manifest digest (not where it was read from, so a mirror change reuses
// it), the agent layer's hash and the wrap version.
func wrapKey(source, agentSum string) [32]byte {
	digest := source
	if _, d, ok := strings.Cut(source, "@"); ok {
		digest = d
	}
	return sha256.Sum256([]byte(wrapVersion + "\n" + digest + "\n" + agentSum))
}

// registryOf is the host part of a repository or reference.
func registryOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}
