package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// pathStatHeader is where docker puts a path's stat on archive responses.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st engine.PathStat) {
	b, _ := json.Marshal(st)
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", engine.Errorf(engine.KindInvalid, "path cannot be empty")
	}
	return p, engine.CheckPath(p)
}

// headContainersArchive: HEAD /containers/{id}/archive (stat for docker cp).
func (s *Server) headContainersArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.e.ArchiveStat(r.Context(), s.ns(r), chi.URLParam(r, "id"), p)
	if err != nil {
		return err
	}
	setPathStat(w, st)
	w.WriteHeader(http.StatusOK)
	return nil
}

// getContainersArchive: GET /containers/{id}/archive (docker cp out).
func (s *Server) getContainersArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	started := false
	err = s.e.ArchiveGet(r.Context(), s.ns(r), chi.URLParam(r, "id"), p, func(st engine.PathStat) {
		setPathStat(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
	}, w)
	if err != nil && !started {
		return err
	}
	if err != nil {
		s.log.Warn("archive stream ended early", "path", p, "err", err)
	}
	return nil
}

// putContainersArchive: PUT /containers/{id}/archive (docker cp in).
func (s *Server) putContainersArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	if err := s.e.ArchivePut(r.Context(), s.ns(r), chi.URLParam(r, "id"), p, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
