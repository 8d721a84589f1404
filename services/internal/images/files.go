package images

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/engine"
)

var _ engine.ImageFiles = (*Source)(nil)

// Filesystem returns img's flattened filesystem as a tar stream, read from
// the registry as the caller consumes it (mutate.Extract: upper layers
// win, whiteouts are applied). Layers are not cached: it serves docker cp
// of containers that have never run, which is rare and small.
func (s *Source) Filesystem(ctx context.Context, img *engine.Image) (io.ReadCloser, error) {
	base, err := s.image(ctx, img)
	if err != nil {
		return nil, err
	}
	return mutate.Extract(base), nil
}

// image reads img from where it lives (its Source).
func (s *Source) image(ctx context.Context, img *engine.Image) (v1.Image, error) {
	src, err := name.ParseReference(img.Source, s.nameOpts(registryOf(img.Source))...)
	if err != nil {
		return nil, fmt.Errorf("source of %s: %w", img.ID, err)
	}
	base, err := remote.Image(src, s.remoteOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", img.Source, err)
	}
	return base, nil
}
