package dockerapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/go-chi/chi/v5"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/imageops"
)

// postImagesCreate: POST /images/create?fromImage=&tag= (docker pull).
func (s *Server) postImagesCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, tag := q.Get("fromImage"), q.Get("tag")
	if from == "" {
		if q.Get("fromSrc") != "" {
			if s.cfg.Images == nil {
				notImplemented(w, r)
				return nil
			}
			return s.postImagesImport(w, r)
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
	ctx, err := pullAuth(r)
	if err != nil {
		return err
	}
	img, err := s.e.Pull(ctx, ref)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	shown := ref
	if named, err := reference.ParseNormalizedNamed(ref); err == nil && !strings.Contains(ref, "@") {
		shown = reference.FamiliarString(reference.TagNameOnly(named))
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
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	if legacy := r.URL.Query().Get("filter"); legacy != "" { // API < 1.25: a reference
		f["reference"] = append(f["reference"], legacy)
	}
	imgs, err := s.e.Images(r.Context())
	if err != nil {
		return err
	}
	imgs, err = imageops.Filter(imgs, f, func(ref string) (*engine.Image, error) { return s.e.Image(r.Context(), ref) })
	if err != nil {
		return err
	}
	out := make([]image.Summary, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, imageops.Summary(img, -1, -1))
	}
	return writeJSON(w, http.StatusOK, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getImagesByName: GET /images/{name}/json (docker image inspect),
// /images/{name}/history and /images/{name}/get (docker save of one).
func (s *Server) getImagesByName(w http.ResponseWriter, r *http.Request) error {
	name, op := imageSuffix(r)
	switch {
	case op == "json":
		img, err := s.e.Image(r.Context(), name)
		if err != nil {
			return err
		}
		img.RepoTags = engine.VisibleTags(r.Context(), img)
		return writeJSON(w, http.StatusOK, imageInspect(img, requestVersion(r)))
	case s.cfg.Images != nil && op == "history":
		return s.getImagesHistory(w, r, name)
	case s.cfg.Images != nil && op == "get":
		return s.save(w, r, []string{name})
	}
	notImplemented(w, r)
	return nil
}

// legacyImageInspect is image inspect with the fields older API versions
// have and moby's current type lacks: Parent, Comment, DockerVersion and
// Author before 1.52, Container and ContainerConfig before 1.45,
// VirtualSize before 1.44.
type legacyImageInspect struct {
	image.InspectResponse
	// Config, before API 1.50, is a whole container config (its
	// container-only fields empty), as docker 20.10 shows it: clients
	// read Config["Entrypoint"] and the like without checking.
	Config          any
	Parent          *string           `json:",omitempty"`
	Comment         *string           `json:",omitempty"`
	Container       *string           `json:",omitempty"`
	ContainerConfig *container.Config `json:",omitempty"`
	DockerVersion   *string           `json:",omitempty"`
	Author          *string           `json:",omitempty"`
	VirtualSize     *int64            `json:",omitempty"`
}

func imageInspect(img *engine.Image, version string) legacyImageInspect {
	cfg := &dockerspec.DockerOCIImageConfig{}
	if c := img.Config; c != nil {
		cfg.User, cfg.Env, cfg.Entrypoint, cfg.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
		cfg.WorkingDir, cfg.Labels, cfg.StopSignal, cfg.Volumes = c.WorkingDir, c.Labels, c.StopSignal, c.Volumes
		cfg.OnBuild = c.OnBuild
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
	resp := image.InspectResponse{
		ID:           img.ID,
		RepoTags:     nonNil(img.RepoTags),
		RepoDigests:  nonNil(img.RepoDigests),
		Comment:      img.Comment,
		Author:       img.Author,
		Config:       cfg,
		Architecture: img.Arch,
		Os:           img.OS,
		Size:         img.Size,
		GraphDriver:  &storage.DriverData{Name: "cloud-run-functions", Data: map[string]string{}},
		RootFS:       image.RootFS{Type: "layers"},
		Metadata:     image.Metadata{LastTagTime: img.Tagged},
	}
	if !img.Created.IsZero() || versionLess(version, "1.44") {
		resp.Created = img.Created.Format(time.RFC3339Nano)
	}
	for _, l := range img.Layers {
		if l.DiffID != "" {
			resp.RootFS.Layers = append(resp.RootFS.Layers, l.DiffID)
		}
	}
	out := legacyImageInspect{InspectResponse: resp, Config: resp.Config}
	if versionLess(version, "1.50") {
		full := container.Config{}
		if img.Config != nil {
			full = *img.Config
		}
		out.Config = &full
	}
	if versionLess(version, "1.52") {
		out.Parent, out.Comment, out.DockerVersion, out.Author = &img.Parent, &img.Comment, &img.DockerVersion, &img.Author
	}
	if versionLess(version, "1.45") {
		out.Container, out.ContainerConfig = &img.Container, img.ContainerConfig
		if out.ContainerConfig == nil {
			out.ContainerConfig = &container.Config{}
		}
	}
	if versionLess(version, "1.44") {
		out.VirtualSize = &img.Size
	}
	return out
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
		if s.cfg.Images != nil && !engine.SeenByOthers(r.Context(), img) { // others' images keep their copy
			s.cfg.Images.Forget(r.Context(), img)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// postImagesByName: POST /images/{name}/tag?repo=&tag= (docker tag) and
// /images/{name}/push?tag= (docker push).
func (s *Server) postImagesByName(w http.ResponseWriter, r *http.Request) error {
	name, op := imageSuffix(r)
	switch {
	case op == "tag":
		q := r.URL.Query()
		if err := s.e.TagImage(r.Context(), name, q.Get("repo"), q.Get("tag")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	case op == "push" && s.cfg.Images != nil:
		return s.postImagesPush(w, r, name)
	}
	notImplemented(w, r)
	return nil
}

// getDistribution: GET /distribution/{name}/json (docker-py's
// inspect_distribution; buildx and docker manifest use it to see an
// image's platforms without pulling it).
func (s *Server) getDistribution(w http.ResponseWriter, r *http.Request) error {
	rest := chi.URLParam(r, "*")
	name, ok := strings.CutSuffix(rest, "/json")
	if !ok || name == "" {
		WriteJSONError(w, http.StatusNotFound, "page not found")
		return nil
	}
	ctx, err := pullAuth(r)
	if err != nil {
		return err
	}
	d, err := s.e.Distribution(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}
