package instances

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// image is an unpacked image: a read-only root filesystem shared by the
// instances of every revision that runs it.
type image struct {
	Digest string
	Rootfs string
	Config v1.Config
	// Size is the compressed size of its layers: what a new instance
	// fetches (Config.PullBytesPerSecond).
	Size int64
}

// imageCache pulls images and unpacks each digest once into
// dir/<hex>/rootfs, with its config in dir/<hex>/config.json. Unpacked
// images survive restarts.
type imageCache struct {
	dir      string
	insecure bool
	logger   *slog.Logger

	mu      sync.Mutex
	pending map[string]*unpack
}

type unpack struct {
	done chan struct{}
	img  *image
	err  error
}

func newImageCache(dir string, insecure bool, logger *slog.Logger) *imageCache {
	return &imageCache{dir: dir, insecure: insecure, logger: logger, pending: map[string]*unpack{}}
}

// get resolves ref in its registry and returns the unpacked image.
// Loopback and private-network registries are reached over plain http.
func (c *imageCache) get(ctx context.Context, ref string) (*image, error) {
	var opts []name.Option
	if c.insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("parse image %q: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of %s: %w", ref, err)
	}
	key := d.Hex

	c.mu.Lock()
	if u, ok := c.pending[key]; ok {
		c.mu.Unlock()
		select {
		case <-u.done:
			return u.img, u.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	u := &unpack{done: make(chan struct{})}
	c.pending[key] = u
	c.mu.Unlock()

	u.img, u.err = c.unpack(img, d.String())
	if u.err == nil {
		u.img.Size = layersSize(img)
	}
	if u.err != nil {
		c.mu.Lock()
		delete(c.pending, key) // retry on the next request
		c.mu.Unlock()
	}
	close(u.done)
	return u.img, u.err
}

// unpack extracts img into the cache unless an earlier run already did.
func (c *imageCache) unpack(img v1.Image, digest string) (*image, error) {
	base := filepath.Join(c.dir, digestHex(digest))
	rootfs := filepath.Join(base, "rootfs")
	cfgPath := filepath.Join(base, "config.json")
	if b, err := os.ReadFile(cfgPath); err == nil {
		var cfg v1.Config
		if err := json.Unmarshal(b, &cfg); err == nil {
			if _, err := os.Stat(rootfs); err == nil {
				return &image{Digest: digest, Rootfs: rootfs, Config: cfg}, nil
			}
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", digest, err)
	}
	if err := os.RemoveAll(base); err != nil {
		return nil, fmt.Errorf("clear %s: %w", base, err)
	}
	tmp := filepath.Join(base, "rootfs.tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("unpack dir: %w", err)
	}
	rc := mutate.Extract(img)
	err = extract(rc, tmp)
	if cerr := rc.Close(); err == nil && cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
		err = cerr
	}
	if err != nil {
		_ = os.RemoveAll(base)
		return nil, fmt.Errorf("unpack %s: %w", digest, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, rootfs); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", digest, err)
	}
	b, err := json.Marshal(cf.Config)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("write image config: %w", err)
	}
	c.logger.Debug("image unpacked", "digest", digest, "rootfs", rootfs)
	return &image{Digest: digest, Rootfs: rootfs, Config: cf.Config}, nil
}

func digestHex(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok {
		return hex
	}
	return d
}

// layersSize is the compressed size of img's layers (0 if unknown).
func layersSize(img v1.Image) int64 {
	m, err := img.Manifest()
	if err != nil {
		return 0
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}
