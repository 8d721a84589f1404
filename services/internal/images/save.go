package images

import (
	"archive/tar"

	"context"
	"encoding/json"
	"fmt"
	"github.com/distribution/reference"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sockerless/sockerless/services/internal/imageops"
)

// archiveManifest is one entry of a docker save archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes items as a docker save archive (what docker load reads):
// each image's config as ID.json, its layers as they are in the registry
// (compressed: docker load decompresses), manifest.json and repositories.
// Layers are streamed from the registry, never held whole.
func (s *Source) Save(ctx context.Context, w io.Writer, items []imageops.SaveItem) error {
	tw := tar.NewWriter(w)
	var manifest []archiveManifest
	repositories := map[string]map[string]string{}
	written := map[string]bool{}
	now := time.Now()
	for _, it := range items {
		img, err := s.image(ctx, it.Image)
		if err != nil {
			return err
		}
		raw, err := img.RawConfigFile()
		if err != nil {
			return fmt.Errorf("config of %s: %w", it.Image.ID, err)
		}
		m := archiveManifest{Config: strings.TrimPrefix(it.Image.ID, "sha256:") + ".json", RepoTags: it.Tags}
		if !written[m.Config] {
			if err := writeTarFile(tw, m.Config, raw, now); err != nil {
				return err
			}
			written[m.Config] = true
		}
		layers, err := img.Layers()
		if err != nil {
			return fmt.Errorf("layers of %s: %w", it.Image.ID, err)
		}
		for _, l := range layers {
			p, err := s.saveLayer(tw, l, written, now)
			if err != nil {
				return fmt.Errorf("layer of %s: %w", it.Image.ID, err)
			}
			m.Layers = append(m.Layers, p)
		}
		for _, t := range it.Tags {
			named, err := reference.ParseNormalizedNamed(t)
			tagged, ok := named.(reference.Tagged)
			if err != nil || !ok || len(m.Layers) == 0 {
				continue
			}
			repo := reference.FamiliarName(named)
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][tagged.Tag()] = strings.SplitN(m.Layers[len(m.Layers)-1], ".", 2)[0]
		}
		manifest = append(manifest, m)
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"manifest.json", manifest}, {"repositories", repositories}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeTarFile(tw, f.name, b, time.Unix(0, 0)); err != nil {
			return err
		}
	}
	return tw.Close()
}

// saveLayer writes a layer (once per archive) as it is stored and returns
// its path in the archive.
func (s *Source) saveLayer(tw *tar.Writer, l v1.Layer, written map[string]bool, now time.Time) (string, error) {
	d, err := l.Digest()
	if err != nil {
		return "", err
	}
	mt, err := l.MediaType()
	if err != nil {
		return "", err
	}
	ext := ".tar.gz"
	switch mt {
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		ext = ".tar"
	case types.OCILayerZStd:
		ext = ".tar.zst"
	}
	p := d.Hex + ext
	if written[p] {
		return p, nil
	}
	size, err := l.Size()
	if err != nil {
		return "", err
	}
	rc, err := l.Compressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return "", err
	}
	written[p] = true
	return p, nil
}

func writeTarFile(tw *tar.Writer, name string, b []byte, mt time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}
