package images

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/imageops"
)

// Push copies img to target (a tagged reference in a registry the user
// names) with the client's credentials only: never the control plane's
// own, which reach the deployment's registries. It returns the pushed
// manifest's digest and size.
func (s *Source) Push(ctx context.Context, img *engine.Image, target string, auth imageops.PushAuth, report func(imageops.PushStatus)) (string, int64, error) {
	ref, err := name.ParseReference(target)
	if err != nil {
		return "", 0, engine.Errorf(engine.KindInvalid, "invalid reference format: %s", target)
	}
	if err := s.allowed(ref); err != nil {
		return "", 0, err
	}
	if own, err := s.targetRepo(); err == nil && ref.Context().Name() == own.Name() {
		return "", 0, engine.Errorf(engine.KindInvalid, "%s holds Sockerless's own images: push elsewhere", own.Name())
	}
	src, err := s.image(ctx, img)
	if err != nil {
		return "", 0, err
	}
	var a authn.Authenticator = authn.Anonymous
	if auth != (imageops.PushAuth{}) {
		a = authn.FromConfig(authn.AuthConfig{Username: auth.Username, Password: auth.Password, Auth: auth.Auth,
			IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken})
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(a)}
	layers, err := src.Layers()
	if err != nil {
		return "", 0, fmt.Errorf("layers of %s: %w", img.ID, err)
	}
	ids := make([]string, len(layers))
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return "", 0, err
		}
		ids[i] = d.Hex[:12]
		report(imageops.PushStatus{Status: "Preparing", Layer: ids[i]})
	}
	for i, l := range layers {
		report(imageops.PushStatus{Status: "Pushing", Layer: ids[i]})
		if err := remote.WriteLayer(ref.Context(), l, opts...); err != nil {
			return "", 0, pushError(err)
		}
		report(imageops.PushStatus{Status: "Pushed", Layer: ids[i]})
	}
	if err := remote.Write(ref, src, opts...); err != nil {
		return "", 0, pushError(err)
	}
	d, err := src.Digest()
	if err != nil {
		return "", 0, err
	}
	raw, err := src.RawManifest()
	if err != nil {
		return "", 0, err
	}
	return d.String(), int64(len(raw)), nil
}

// pushError keeps a registry's own words ("unauthorized: ...").
func pushError(err error) error {
	msg := err.Error()
	for _, m := range []string{"PUT ", "POST ", "PATCH ", "HEAD ", "GET "} {
		if strings.HasPrefix(msg, m) {
			if _, rest, ok := strings.Cut(msg, ": "); ok {
				msg = rest
			}
			break
		}
	}
	return engine.Errorf(engine.KindInternal, "%s", msg)
}

// History reads img's build history from its config.
func (s *Source) History(ctx context.Context, img *engine.Image) ([]imageops.HistoryEntry, error) {
	src, err := s.image(ctx, img)
	if err != nil {
		return nil, err
	}
	cf, err := src.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", img.ID, err)
	}
	out := make([]imageops.HistoryEntry, 0, len(cf.History))
	for _, h := range cf.History {
		out = append(out, imageops.HistoryEntry{Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer})
	}
	return out, nil
}

// Forget deletes img from the deployment's image repository if it lives
// there (a loaded, imported or committed image whose last record went);
// pulled images are the registries' and are left alone.
func (s *Source) Forget(ctx context.Context, img *engine.Image) error {
	repo, err := s.targetRepo()
	if err != nil {
		return err
	}
	d, ok := strings.CutPrefix(img.Source, repo.Name()+"@")
	if !ok {
		return nil
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(s.cfg.Keychain)}
	if err := remote.Delete(repo.Tag("img-"+strings.TrimPrefix(img.ID, "sha256:")), opts...); err != nil {
		return fmt.Errorf("delete %s: %w", img.ID, err)
	}
	if err := remote.Delete(repo.Digest(d), opts...); err != nil {
		return fmt.Errorf("delete %s: %w", img.Source, err)
	}
	return nil
}
