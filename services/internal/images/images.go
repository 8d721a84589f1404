package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
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
}

// Source is engine.ImageSource on registries.
type Source struct {
	cfg      Config
	mirrors  map[string]*url.URL
	insecure map[string]bool // registry hosts reached in plain HTTP

	agentOnce sync.Once
	agent     *agentLayer
	agentErr  error
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
		remote.WithAuthFromKeychain(s.cfg.Keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}),
	}
}

// resolve maps a user's reference to the reference actually fetched.
func (s *Source) resolve(ref string) (user name.Reference, fetch name.Reference, err error) {
	user, err = name.ParseReference(ref)
	if err != nil {
		return nil, nil, engine.Errorf(engine.KindInvalid, "invalid reference format: %s", ref)
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

// Pull reads an image's metadata (config, digests) from its registry.
func (s *Source) Pull(ctx context.Context, ref string) (*engine.Image, error) {
	user, fetch, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(fetch, s.remoteOpts(ctx)...)
	if err != nil {
		return nil, s.pullError(ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", ref, err)
	}
	cfgDigest, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("config digest of %s: %w", ref, err)
	}
	manDigest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("manifest digest of %s: %w", ref, err)
	}
	var size int64
	if layers, err := img.Layers(); err == nil {
		for _, l := range layers {
			if n, err := l.Size(); err == nil {
				size += n
			}
		}
	}
	familiar := familiarName(user)
	out := &engine.Image{
		ID:          cfgDigest.String(),
		RepoDigests: []string{familiar + "@" + desc.Digest.String()},
		Created:     cf.Created.Time.UTC(),
		Size:        size,
		OS:          cf.OS,
		Arch:        cf.Architecture,
		Config:      convertConfig(cf.Config),
		Source:      fetch.Context().Name() + "@" + manDigest.String(),
	}
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

// pullError turns registry errors into docker's wording.
func (s *Source) pullError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		notFound := te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusUnauthorized
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				notFound = true
			}
		}
		if notFound {
			short := ref
			if r, perr := name.ParseReference(ref); perr == nil {
				short = familiarName(r)
			}
			return &engine.Error{Kind: engine.KindNotFound, Err: err,
				Message: fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login'", short)}
		}
	}
	return &engine.Error{Kind: engine.KindUnavailable, Err: err, Message: fmt.Sprintf("cannot pull %s: %v", ref, err)}
}

// convertConfig turns an OCI image config into docker's container config.
func convertConfig(c v1.Config) *container.Config {
	out := &container.Config{
		User:       c.User,
		Env:        c.Env,
		Cmd:        c.Cmd,
		Entrypoint: c.Entrypoint,
		WorkingDir: c.WorkingDir,
		Labels:     c.Labels,
		StopSignal: c.StopSignal,
		Volumes:    c.Volumes,
	}
	for p := range c.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			if out.ExposedPorts == nil {
				out.ExposedPorts = network.PortSet{}
			}
			out.ExposedPorts[port] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	return out
}

// agentLayer returns the agent layer, made once per process.
func (s *Source) agentLayer() (*agentLayer, error) {
	s.agentOnce.Do(func() { s.agent, s.agentErr = buildAgentLayer(s.cfg.AgentBinary) })
	return s.agent, s.agentErr
}

// Wrap pushes img + the agent layer (agent as entrypoint) to TargetRepo,
// unless an earlier Wrap of the same image and agent already did.
func (s *Source) Wrap(ctx context.Context, img *engine.Image) (string, error) {
	agent, err := s.agentLayer()
	if err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(img.Source + "\n" + agent.sum))
	repo, err := name.NewRepository(s.cfg.TargetRepo, s.nameOpts(registryOf(s.cfg.TargetRepo))...)
	if err != nil {
		return "", fmt.Errorf("target repo %s: %w", s.cfg.TargetRepo, err)
	}
	tag := repo.Tag(hex.EncodeToString(key[:16]))
	if d, err := remote.Head(tag, s.remoteOpts(ctx)...); err == nil {
		return repo.Name() + "@" + d.Digest.String(), nil
	}
	src, err := name.ParseReference(img.Source, s.nameOpts(registryOf(img.Source))...)
	if err != nil {
		return "", fmt.Errorf("source of %s: %w", img.ID, err)
	}
	base, err := remote.Image(src, s.remoteOpts(ctx)...)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", img.Source, err)
	}
	wrapped, err := mutate.AppendLayers(base, agent.layer)
	if err != nil {
		return "", fmt.Errorf("append agent layer: %w", err)
	}
	cf, err := wrapped.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint = agent.entrypoint
	cf.Config.Cmd = nil
	cf.Config.Healthcheck = nil
	if wrapped, err = mutate.ConfigFile(wrapped, cf); err != nil {
		return "", err
	}
	if err := remote.Write(tag, wrapped, s.remoteOpts(ctx)...); err != nil {
		return "", fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := wrapped.Digest()
	if err != nil {
		return "", err
	}
	return repo.Name() + "@" + d.String(), nil
}

// registryOf is the host part of a repository or reference.
func registryOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}
