// Package registry is gcpsim's stand-in for Artifact Registry: an OCI
// distribution registry (go-containerregistry's) served under /v2/, with
// blobs on disk in the state directory and manifests in memory.
package registry

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// New returns an http.Handler serving the registry API under /v2/, keeping
// blobs in blobDir (created if missing). Registry request logs go to logger
// at debug level.
func New(blobDir string, logger *slog.Logger) (http.Handler, error) {
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry blob dir: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return ggcrregistry.New(
		ggcrregistry.WithBlobHandler(ggcrregistry.NewDiskBlobHandler(blobDir)),
		ggcrregistry.Logger(slog.NewLogLogger(logger.Handler(), slog.LevelDebug)),
	), nil
}
