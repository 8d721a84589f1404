package images

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Distribution describes ref as its registry has it, without pulling it
// (docker's GET /distribution/{name}/json): the manifest's descriptor and
// the platforms it serves — an index's entries, or a single image's
// platform from its config, as dockerd reports them.
func (s *Source) Distribution(ctx context.Context, ref string) (*registry.DistributionInspect, error) {
	_, _, desc, err := s.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: digest.Digest(desc.Digest.String()), Size: desc.Size},
		Platforms:  []ocispec.Platform{},
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", ref, err)
		}
		for _, m := range im.Manifests {
			if p := m.Platform; p != nil {
				out.Platforms = append(out.Platforms, ocispec.Platform{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures, Variant: p.Variant})
			}
		}
		return out, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", ref, err)
	}
	out.Platforms = append(out.Platforms, ocispec.Platform{Architecture: cf.Architecture, OS: cf.OS, OSVersion: cf.OSVersion, OSFeatures: cf.OSFeatures, Variant: cf.Variant})
	return out, nil
}
