package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/imageops"
)

// A docker load archive is read in one pass, as it arrives: files up to
// loadSmall (configs, manifest.json, small layers) are kept in memory, at
// most loadBuffered in all; larger ones are layers, uploaded to the
// deployment's image repository while they are read. Nothing is spooled
// to disk (a Cloud Run instance's disk is its memory).
const (
	loadSmall    = 1 << 20
	loadBuffered = 64 << 20
)

// pushedLayer is a layer uploaded to the image repository.
type pushedLayer struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType // "" is gzip
}

// Load reads a docker save archive (docker's own, older or OCI-layout
// ones: anything with a manifest.json), pushes each image to the
// deployment's image repository (TargetRepo, tagged img-ID) so functions
// can run it, and returns the images with the names the archive gives
// them. Configs are kept byte for byte, so an image keeps its ID.
func (s *Source) Load(ctx context.Context, r io.Reader, progress imageops.Progress) ([]*engine.Image, error) {
	repo, err := s.targetRepo()
	if err != nil {
		return nil, err
	}
	small := map[string][]byte{}
	pushed := map[string]pushedLayer{}
	var buffered int64
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, loadError(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p := path.Clean(h.Name)
		if h.Size <= loadSmall {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, loadError(err)
			}
			if buffered += int64(len(b)); buffered > loadBuffered {
				return nil, loadError(fmt.Errorf("more than %d MiB of small files", loadBuffered>>20))
			}
			small[p] = b
			continue
		}
		l, err := s.pushLayer(ctx, repo, tr, p, h.Size, progress)
		if err != nil {
			return nil, err
		}
		pushed[p] = l
	}
	raw, ok := small["manifest.json"]
	if !ok {
		return nil, loadError(errors.New("no manifest.json in the archive"))
	}
	var manifest []archiveManifest
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, loadError(fmt.Errorf("manifest.json: %w", err))
	}
	var out []*engine.Image
	for _, m := range manifest {
		img, err := s.loadOne(ctx, repo, m, small, pushed, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// loadOne pushes one image of the archive whose files are in small or
// already pushed.
func (s *Source) loadOne(ctx context.Context, repo name.Repository, m archiveManifest, small map[string][]byte, pushed map[string]pushedLayer, progress imageops.Progress) (*engine.Image, error) {
	raw, ok := small[path.Clean(m.Config)]
	if !ok {
		return nil, loadError(fmt.Errorf("config %s missing from the archive", m.Config))
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, loadError(fmt.Errorf("config %s: %w", m.Config, err))
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, loadError(fmt.Errorf("invalid manifest, layers length mismatch: expected %d, got %d", len(cf.RootFS.DiffIDs), len(m.Layers)))
	}
	var layers []pushedLayer
	for i, lp := range m.Layers {
		lp = path.Clean(lp)
		l, ok := pushed[lp]
		if !ok {
			b, ok := small[lp]
			if !ok {
				return nil, loadError(fmt.Errorf("layer %s missing from the archive", lp))
			}
			if l, err = s.pushLayer(ctx, repo, bytes.NewReader(b), lp, int64(len(b)), progress); err != nil {
				return nil, err
			}
			pushed[lp] = l
		}
		if l.diffID != cf.RootFS.DiffIDs[i] {
			return nil, loadError(fmt.Errorf("invalid diffID for layer %d: expected %q, got %q", i, cf.RootFS.DiffIDs[i], l.diffID))
		}
		layers = append(layers, l)
	}
	img, err := s.putImage(ctx, repo, raw, layers)
	if err != nil {
		return nil, err
	}
	for _, t := range m.RepoTags {
		if n := imageops.FamiliarTag(t); n != "" {
			img.RepoTags = append(img.RepoTags, n)
		}
	}
	return img, nil
}

// pushLayer uploads one layer from r (compressed or not) and returns it.
func (s *Source) pushLayer(ctx context.Context, repo name.Repository, r io.Reader, p string, size int64, progress imageops.Progress) (pushedLayer, error) {
	id := layerShortID(p)
	cr := &countingReader{r: r, report: func(n int64) {
		if progress != nil {
			progress(id, n, size)
		}
	}}
	dr, err := engine.Decompressed(cr)
	if err != nil {
		return pushedLayer{}, loadError(err)
	}
	l := stream.NewLayer(io.NopCloser(dr))
	if err := remote.WriteLayer(repo, l, s.remoteOpts(ctx)...); err != nil {
		if cr.err != nil {
			return pushedLayer{}, loadError(cr.err)
		}
		return pushedLayer{}, fmt.Errorf("push layer %s to %s: %w", p, repo, err)
	}
	var out pushedLayer
	if out.digest, err = l.Digest(); err == nil {
		if out.diffID, err = l.DiffID(); err == nil {
			out.size, err = l.Size()
		}
	}
	if err != nil {
		return pushedLayer{}, fmt.Errorf("pushed layer %s: %w", p, err)
	}
	return out, nil
}

// putImage pushes raw (a config, kept as is) and a manifest of layers to
// repo, tagged by the config's digest, and returns the image's record.
func (s *Source) putImage(ctx context.Context, repo name.Repository, raw []byte, layers []pushedLayer) (*engine.Image, error) {
	cfgLayer := static.NewLayer(raw, types.DockerConfigJSON)
	if err := remote.WriteLayer(repo, cfgLayer, s.remoteOpts(ctx)...); err != nil {
		return nil, fmt.Errorf("push config to %s: %w", repo, err)
	}
	cfgDigest, _ := cfgLayer.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(raw)), Digest: cfgDigest},
	}
	for _, l := range layers {
		mt := l.mediaType
		if mt == "" {
			mt = types.DockerLayer
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: l.size, Digest: l.digest})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	tag := repo.Tag("img-" + cfgDigest.Hex)
	if err := remote.Put(tag, rawManifest(mb), s.remoteOpts(ctx)...); err != nil {
		return nil, fmt.Errorf("push manifest to %s: %w", tag, err)
	}
	d, _, err := v1.SHA256(bytes.NewReader(mb))
	if err != nil {
		return nil, err
	}
	src := repo.Name() + "@" + d.String()
	img, err := remote.Image(repo.Digest(d.String()), s.remoteOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", src, err)
	}
	return record(img, src)
}

// rawManifest is a docker schema 2 manifest to PUT as is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }

// targetRepo is the deployment's image repository.
func (s *Source) targetRepo() (name.Repository, error) {
	repo, err := name.NewRepository(s.cfg.TargetRepo, s.nameOpts(registryOf(s.cfg.TargetRepo))...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("target repo %s: %w", s.cfg.TargetRepo, err)
	}
	return repo, nil
}

// layerShortID names a layer file of an archive as docker's progress does:
// twelve hex digits of its name.
func layerShortID(p string) string {
	base := strings.TrimPrefix(p, "blobs/sha256/")
	if d, f := path.Split(base); f == "layer.tar" {
		base = strings.TrimSuffix(d, "/")
	}
	base = strings.SplitN(path.Base(base), ".", 2)[0]
	if len(base) > 12 {
		base = base[:12]
	}
	return base
}

// loadError is docker's answer to an archive it cannot read.
func loadError(err error) error {
	return engine.Errorf(engine.KindInvalid, "Error processing tar file(exit status 1): %v", err)
}

// countingReader reports how much was read, at most every 512 KiB, and
// keeps the read error (the client's) apart from the registry's.
type countingReader struct {
	r      io.Reader
	n      int64
	last   int64
	err    error
	report func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 512<<10 || (err != nil && c.n > c.last) {
		c.last = c.n
		c.report(c.n)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}
