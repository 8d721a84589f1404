package dockerapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// postImagesCreate: POST /images/create?fromImage=&tag= (docker pull).
func (s *Server) postImagesCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, tag := q.Get("fromImage"), q.Get("tag")
	if from == "" {
		if q.Get("fromSrc") != "" {
			return engine.Errorf(engine.KindNotImplemented, "docker import is not supported")
		}
		return engine.Errorf(engine.KindInvalid, "fromImage or fromSrc is required")
	}
	ref := from
	switch {
	case strings.HasPrefix(tag, "sha256:"):
		ref = from + "@" + tag
	case tag != "":
		ref = from + ":" + tag
	}
	img, err := s.e.Pull(r.Context(), ref)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	shown := ref
	if len(img.RepoTags) > 0 && !strings.Contains(ref, "@") {
		shown = img.RepoTags[0]
	}
	name, t, _ := strings.Cut(shown, ":")
	if t == "" {
		t = "latest"
	}
	msgs := []map[string]string{{"status": "Pulling from " + name, "id": t}}
	if len(img.RepoDigests) > 0 {
		_, d, _ := strings.Cut(img.RepoDigests[0], "@")
		msgs = append(msgs, map[string]string{"status": "Digest: " + d})
	}
	msgs = append(msgs, map[string]string{"status": "Status: Downloaded newer image for " + shown})
	// A chunked JSON-message stream, as the engine's progress: clients
	// decode it message by message (docker-py's stream=True reads only a
	// chunked answer as a stream).
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			return nil
		}
		_ = rc.Flush()
	}
	return nil
}

// getImagesJSON: GET /images/json (docker images).
func (s *Server) getImagesJSON(w http.ResponseWriter, r *http.Request) error {
	imgs, err := s.e.Images(r.Context())
	if err != nil {
		return err
	}
	out := make([]image.Summary, 0, len(imgs))
	for _, img := range imgs {
		labels := map[string]string{}
		if img.Config != nil && img.Config.Labels != nil {
			labels = img.Config.Labels
		}
		out = append(out, image.Summary{
			ID:          img.ID,
			RepoTags:    nonNil(img.RepoTags),
			RepoDigests: nonNil(img.RepoDigests),
			Created:     img.Created.Unix(),
			Size:        img.Size,
			Labels:      labels,
			Containers:  -1,
			SharedSize:  -1,
		})
	}
	return writeJSON(w, http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getImagesByName: GET /images/{name}/json (docker image inspect).
func (s *Server) getImagesByName(w http.ResponseWriter, r *http.Request) error {
	name, op := imageSuffix(r)
	if op != "json" {
		notImplemented(w, r)
		return nil
	}
	img, err := s.e.Image(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, imageInspect(img))
}

func imageInspect(img *engine.Image) image.InspectResponse {
	cfg := &dockerspec.DockerOCIImageConfig{}
	if c := img.Config; c != nil {
		cfg.User, cfg.Env, cfg.Entrypoint, cfg.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
		cfg.WorkingDir, cfg.Labels, cfg.StopSignal, cfg.Volumes = c.WorkingDir, c.Labels, c.StopSignal, c.Volumes
		if len(c.ExposedPorts) > 0 {
			cfg.ExposedPorts = map[string]struct{}{}
			for p := range c.ExposedPorts {
				cfg.ExposedPorts[p.String()] = struct{}{}
			}
		}
		if h := c.Healthcheck; h != nil {
			cfg.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		}
	}
	return image.InspectResponse{
		ID:           img.ID,
		RepoTags:     nonNil(img.RepoTags),
		RepoDigests:  nonNil(img.RepoDigests),
		Created:      img.Created.Format(time.RFC3339Nano),
		Config:       cfg,
		Architecture: img.Arch,
		Os:           img.OS,
		Size:         img.Size,
		RootFS:       image.RootFS{Type: "layers"},
	}
}

// deleteImages: DELETE /images/{name} (docker rmi).
func (s *Server) deleteImages(w http.ResponseWriter, r *http.Request) error {
	name, op := imageSuffix(r)
	if op != "" {
		notImplemented(w, r)
		return nil
	}
	img, err := s.e.RemoveImage(r.Context(), s.ns(r), name, boolParam(r, "force"))
	if err != nil {
		return err
	}
	var out []image.DeleteResponse
	for _, t := range img.RepoTags {
		out = append(out, image.DeleteResponse{Untagged: t})
	}
	if img.ID != "" { // "" when only a name went
		out = append(out, image.DeleteResponse{Deleted: img.ID})
	}
	return writeJSON(w, http.StatusOK, out)
}

// postImagesByName: POST /images/{name}/tag?repo=&tag= (docker tag).
func (s *Server) postImagesByName(w http.ResponseWriter, r *http.Request) error {
	name, op := imageSuffix(r)
	if op != "tag" {
		notImplemented(w, r)
		return nil
	}
	q := r.URL.Query()
	if err := s.e.TagImage(r.Context(), name, q.Get("repo"), q.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}
