package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
)

// PoolPath answers the state of the pool of ready stub functions
// (--pool-size), behind the same token as the Docker API:
//
//	GET /sockerless/v1/pool   {"size": N, "ready": R, "creating": C, "claimed": K}
const PoolPath = "/sockerless/v1/pool"

// poolReporter is the fleet's pool as PoolPath shows it.
type poolReporter interface {
	PoolStatus(ctx context.Context) (fleet.PoolStatus, error)
}

// poolHandler serves PoolPath.
func poolHandler(p poolReporter, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "use GET"})
			return
		}
		st, err := p.PoolStatus(r.Context())
		if err != nil {
			log.Error("pool status", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "internal error"})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
}

// prewarmMatcher says whether an image is one of refs (--prewarm-image):
// by repo tag, with ":latest" when a ref names no tag, or by ID prefix.
func prewarmMatcher(refs []string) func(*engine.Image) bool {
	if len(refs) == 0 {
		return nil
	}
	return func(img *engine.Image) bool {
		for _, ref := range refs {
			if strings.HasPrefix(img.ID, ref) || strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), ref) {
				return true
			}
			withTag := ref
			if i := strings.LastIndex(ref, ":"); i < 0 || strings.Contains(ref[i:], "/") {
				withTag += ":latest"
			}
			if slices.ContainsFunc(img.RepoTags, func(t string) bool {
				return t == ref || t == withTag || strings.HasSuffix(t, "/"+withTag)
			}) {
				return true
			}
		}
		return false
	}
}
