package dockerapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/volume"
	"github.com/sockerless/sockerless/services/internal/volumes"
)

// apiVersionKey carries the request's API version (from its /vX.Y prefix).
type apiVersionKey struct{}

// requestVersion is the API version the client asked for: its path
// prefix, or the newest for a request without one.
func requestVersion(r *http.Request) string {
	if v, ok := r.Context().Value(apiVersionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// versionContext records v as the request's API version.
func versionContext(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, apiVersionKey{}, v)
}

// volumeRoutes serves docker volume; without a volume service every
// volume route is 501.
func (s *Server) volumeRoutes(r chi.Router) {
	if s.cfg.Volumes == nil {
		for _, p := range []string{"/volumes", "/volumes/{name}"} {
			r.Get(p, notImplemented)
		}
		r.Post("/volumes/create", notImplemented)
		r.Post("/volumes/prune", notImplemented)
		r.Delete("/volumes/{name}", notImplemented)
		return
	}
	r.Get("/volumes", s.h(s.getVolumes))
	r.Post("/volumes/create", s.h(s.postVolumesCreate))
	r.Post("/volumes/prune", s.h(s.postVolumesPrune))
	r.Get("/volumes/{name}", s.h(s.getVolumesByName))
	r.Delete("/volumes/{name}", s.h(s.deleteVolumes))
}

// volumeJSON is a volume as docker volume inspect shows it.
func volumeJSON(v *volumes.Volume) volume.Volume {
	return volume.Volume{
		Name:       v.Name,
		Driver:     "local",
		Mountpoint: volumes.Mountpoint(v.Namespace, v.Name),
		CreatedAt:  v.Created.Format(time.RFC3339),
		Labels:     v.Labels,
		Scope:      "local",
	}
}

// getVolumes: GET /volumes (docker volume ls).
func (s *Server) getVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	vs, err := s.cfg.Volumes.List(r.Context(), s.ns(r), f)
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: make([]volume.Volume, 0, len(vs))}
	for _, v := range vs {
		out.Volumes = append(out.Volumes, volumeJSON(v))
	}
	return writeJSON(w, http.StatusOK, out)
}

// postVolumesCreate: POST /volumes/create (docker volume create).
func (s *Server) postVolumesCreate(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	v, err := s.cfg.Volumes.Create(r.Context(), s.ns(r), volumes.CreateRequest{
		Name: req.Name, Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, volumeJSON(v))
}

// getVolumesByName: GET /volumes/{name} (docker volume inspect).
func (s *Server) getVolumesByName(w http.ResponseWriter, r *http.Request) error {
	v, err := s.cfg.Volumes.Get(r.Context(), s.ns(r), chi.URLParam(r, "name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volumeJSON(v))
}

// deleteVolumes: DELETE /volumes/{name}?force= (docker volume rm).
func (s *Server) deleteVolumes(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Volumes.Remove(r.Context(), s.ns(r), chi.URLParam(r, "name"), boolParam(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postVolumesPrune: POST /volumes/prune. Before API 1.42 it removes every
// unused volume; from 1.42 on only anonymous ones unless all=true.
func (s *Server) postVolumesPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	all := versionLess(requestVersion(r), "1.42")
	names, reclaimed, err := s.cfg.Volumes.Prune(r.Context(), s.ns(r), f, all)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: names, SpaceReclaimed: reclaimed})
}

// volumeUsage is the volumes part of docker system df: each volume with
// its size and the number of containers using it.
func (s *Server) volumeUsage(ctx context.Context, ns string) ([]*volume.Volume, error) {
	if s.cfg.Volumes == nil {
		return []*volume.Volume{}, nil
	}
	us, err := s.cfg.Volumes.Usage(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := make([]*volume.Volume, 0, len(us))
	for _, u := range us {
		v := volumeJSON(u.Volume)
		v.UsageData = &volume.UsageData{Size: u.Size, RefCount: int64(u.RefCount)}
		out = append(out, &v)
	}
	return out, nil
}
