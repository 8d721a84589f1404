package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/imageops"
)

// imageOpsRoutes serves the image operations of package imageops;
// without it they answer 501.
func (s *Server) imageOpsRoutes(r chi.Router) {
	ops := []struct {
		method, path string
		h            handler
	}{
		{"GET", "/images/get", s.getImagesGet},
		{"POST", "/images/load", s.postImagesLoad},
		{"POST", "/images/prune", s.postImagesPrune},
		{"POST", "/commit", s.postCommit},
		{"GET", "/containers/{id}/changes", s.getContainersChanges},
		{"GET", "/containers/{id}/export", s.getContainersExport},
		{"GET", "/system/df", s.getSystemDF},
	}
	for _, op := range ops {
		if s.cfg.Images == nil {
			r.Method(op.method, op.path, http.HandlerFunc(notImplemented))
			continue
		}
		r.Method(op.method, op.path, s.h(op.h))
	}
	r.Get("/images/search", s.h(func(http.ResponseWriter, *http.Request) error {
		return engine.Errorf(engine.KindNotImplemented, "docker search is not supported by Sockerless: images come through registry mirrors, which have no search API; search on the registry's own site")
	}))
}

// getImagesGet: GET /images/get?names=... (docker save of several).
func (s *Server) getImagesGet(w http.ResponseWriter, r *http.Request) error {
	return s.save(w, r, r.URL.Query()["names"])
}

// save streams a docker save archive of names.
func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	if len(names) == 0 {
		return engine.Errorf(engine.KindInvalid, "no images named")
	}
	return s.cfg.Images.Save(r.Context(), names, func() {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}, w)
}

// postImagesLoad: POST /images/load?quiet= (docker load). The answer is
// a JSON stream ending with "Loaded image: NAME" lines, or an error
// message, as docker's.
func (s *Server) postImagesLoad(w http.ResponseWriter, r *http.Request) error {
	quiet := boolParam(r, "quiet")
	st := newJSONStream(w)
	err := s.cfg.Images.Load(r.Context(), r.Body, func(id string, cur, total int64) {
		if !quiet {
			st.send(message{Status: "Loading layer", ID: id, ProgressDetail: &progressDetail{Current: cur, Total: total}, Progress: progressBar(cur, total)})
		}
	}, func(img *engine.Image) {
		if len(img.RepoTags) == 0 {
			st.send(message{Stream: "Loaded image ID: " + img.ID + "\n"})
		}
		for _, t := range img.RepoTags {
			st.send(message{Stream: "Loaded image: " + t + "\n"})
		}
	})
	if err != nil {
		s.log.Info("docker load failed", "err", err)
		st.fail(err)
	}
	return nil
}

// postImagesImport: POST /images/create?fromSrc=-&repo=&tag=&changes=
// (docker import of the request body).
func (s *Server) postImagesImport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		return engine.Errorf(engine.KindNotImplemented, "docker import from a URL (%s) is not supported by Sockerless: the control plane does not fetch URLs for clients; import from a file or standard input", src)
	}
	img, err := s.cfg.Images.Import(r.Context(), r.Body, imageops.ImportRequest{
		Repo: q.Get("repo"), Tag: q.Get("tag"), Message: q.Get("message"), Changes: q["changes"], Platform: q.Get("platform"),
	})
	if err != nil {
		return err
	}
	st := newJSONStream(w)
	st.send(message{Status: img.ID})
	return nil
}

// postCommit: POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=
// (docker commit).
func (s *Server) postCommit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var cfg container.Config
	if err := decodeJSON(r, &cfg); err != nil {
		return err
	}
	pause := true
	if q.Get("pause") != "" {
		pause = boolParam(r, "pause")
	}
	img, err := s.cfg.Images.Commit(r.Context(), s.ns(r), imageops.CommitRequest{
		Container: q.Get("container"), Repo: q.Get("repo"), Tag: q.Get("tag"),
		Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"], Pause: pause, Config: &cfg,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]string{"Id": img.ID})
}

// getContainersChanges: GET /containers/{id}/changes (docker diff).
func (s *Server) getContainersChanges(w http.ResponseWriter, r *http.Request) error {
	changes, err := s.cfg.Images.Changes(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	var out []container.FilesystemChange // null when none, as docker
	for _, c := range changes {
		out = append(out, container.FilesystemChange{Path: c.Path, Kind: container.ChangeType(c.Kind)})
	}
	return writeJSON(w, http.StatusOK, out)
}

// getContainersExport: GET /containers/{id}/export (docker export).
func (s *Server) getContainersExport(w http.ResponseWriter, r *http.Request) error {
	return s.cfg.Images.Export(r.Context(), s.ns(r), chi.URLParam(r, "id"), func() {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}, w)
}

// getImagesHistory: GET /images/{name}/history (docker history).
func (s *Server) getImagesHistory(w http.ResponseWriter, r *http.Request, name string) error {
	h, err := s.cfg.Images.History(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

// postImagesPush: POST /images/{name}/push?tag= (docker push), with the
// client's credentials in X-Registry-Auth.
func (s *Server) postImagesPush(w http.ResponseWriter, r *http.Request, name string) error {
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	st := newJSONStream(w)
	err = s.cfg.Images.Push(r.Context(), name, r.URL.Query().Get("tag"), auth, imageops.PushReport{
		Status: func(status, id string) {
			m := message{Status: status, ID: id}
			if id != "" {
				m.ProgressDetail = &progressDetail{}
			}
			st.send(m)
		},
		Done: func(tag, digest string, size int64) {
			st.send(message{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, digest, size)})
			aux, _ := json.Marshal(map[string]any{"Tag": tag, "Digest": digest, "Size": size})
			raw := json.RawMessage(aux)
			st.send(message{ProgressDetail: &progressDetail{}, Aux: &raw})
		},
	})
	if err != nil {
		st.fail(err)
	}
	return nil
}

// registryAuth decodes X-Registry-Auth (base64url JSON; docker's old
// clients sent it in the body).
func registryAuth(r *http.Request) (imageops.PushAuth, error) {
	var auth imageops.PushAuth
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		if err := json.NewDecoder(r.Body).Decode(&auth); err != nil {
			if tooLarge := bodyError(err); engine.KindOf(tooLarge) != engine.KindInvalid {
				return auth, tooLarge
			}
			return auth, engine.Errorf(engine.KindInvalid, "Bad parameters and missing X-Registry-Auth: %v", err)
		}
		return auth, nil
	}
	if err := decodeAuthHeader(h, &auth); err != nil {
		return auth, err
	}
	return auth, nil
}

// decodeAuthHeader decodes X-Registry-Auth (base64url JSON; some clients
// pad, some use the standard alphabet) into v.
func decodeAuthHeader(h string, v any) error {
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(h); err != nil {
			raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "="))
		}
	}
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		return engine.Errorf(engine.KindInvalid, "invalid X-Registry-Auth header: %v", err)
	}
	return nil
}

// postImagesPrune: POST /images/prune?filters= (docker image prune).
func (s *Server) postImagesPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	deleted, reclaimed, err := s.cfg.Images.Prune(r.Context(), s.ns(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, image.PruneReport{ImagesDeleted: deleted, SpaceReclaimed: uint64(reclaimed)})
}
