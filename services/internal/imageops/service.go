package imageops

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Registry is where image bytes live (package images on
// go-containerregistry).
type Registry interface {
	// Save writes items as a docker save archive.
	Save(ctx context.Context, w io.Writer, items []SaveItem) error
	// Load pushes the images of a docker save archive to the deployment's
	// image repository and returns them with the archive's names.
	Load(ctx context.Context, r io.Reader, progress Progress) ([]*engine.Image, error)
	// Build pushes a new image made of one layer on a base.
	Build(ctx context.Context, n NewImage) (*engine.Image, error)
	// Index writes the image's file index (proto.FileEntry JSON lines).
	Index(ctx context.Context, img *engine.Image, w io.Writer) error
	// Filesystem is the image's flattened filesystem as a tar.
	Filesystem(ctx context.Context, img *engine.Image) (io.ReadCloser, error)
	// Push copies the image to target with the client's credentials and
	// returns the manifest's digest and size.
	Push(ctx context.Context, img *engine.Image, target string, auth PushAuth, report func(PushStatus)) (string, int64, error)
	// Forget deletes an image the deployment's repository holds.
	Forget(ctx context.Context, img *engine.Image) error
}

// Engine is what this package needs of the container engine.
type Engine interface {
	Image(ctx context.Context, ref string) (*engine.Image, error)
	Images(ctx context.Context) ([]*engine.Image, error)
	List(ctx context.Context, ns string, opts engine.ListOptions) ([]*engine.Container, error)
	NeverStarted(ctx context.Context, ns, ref string) (*engine.Container, bool, error)
	FilesOp(ctx context.Context, ns, ref, op string, stdin io.Reader, out io.Writer) error
	Pause(ctx context.Context, ns, ref string) error
	Unpause(ctx context.Context, ns, ref string) error
}

// Images is the store's image records.
type Images interface {
	PutImage(ctx context.Context, img *engine.Image) error
	DeleteImage(ctx context.Context, id string) error
}

// Config wires a Service.
type Config struct {
	Engine   Engine
	Images   Images
	Registry Registry
	Logger   *slog.Logger
}

// Service carries out the image operations.
type Service struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	indexes []cachedIndex // most recently used last
	cached  int
}

type cachedIndex struct {
	id   string
	data []byte
}

// indexCacheBytes bounds the file indexes kept: reading one means reading
// every layer of the image, while a big image's index is a few MiB.
const indexCacheBytes = 32 << 20

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Logger}
}

// index returns img's file index, from the cache or its layers.
func (s *Service) index(ctx context.Context, img *engine.Image) ([]byte, error) {
	s.mu.Lock()
	for i, c := range s.indexes {
		if c.id == img.ID {
			s.indexes = append(append(s.indexes[:i:i], s.indexes[i+1:]...), c)
			s.mu.Unlock()
			return c.data, nil
		}
	}
	s.mu.Unlock()
	var buf bytes.Buffer
	if err := s.cfg.Registry.Index(ctx, img, &buf); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indexes = append(s.indexes, cachedIndex{id: img.ID, data: data})
	s.cached += len(data)
	for s.cached > indexCacheBytes && len(s.indexes) > 1 {
		s.cached -= len(s.indexes[0].data)
		s.indexes = s.indexes[1:]
	}
	return data, nil
}
