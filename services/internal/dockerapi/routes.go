package dockerapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// routes is the table of every Docker API route: served ones with their
// handler, unsupported ones explicitly 501.
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		WriteJSONError(w, http.StatusNotFound, "page not found")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		WriteJSONError(w, http.StatusNotFound, "page not found")
	})

	// System
	r.Get("/_ping", s.getPing)
	r.Head("/_ping", s.getPing)
	r.Get("/version", s.h(s.getVersion))
	r.Get("/info", s.h(s.getInfo))

	// Images (names contain "/": the suffix is split by hand)
	r.Post("/images/create", s.h(s.postImagesCreate))
	r.Post("/auth", s.h(s.postAuth))
	r.Get("/images/json", s.h(s.getImagesJSON))
	r.Get("/images/*", s.h(s.getImagesByName))
	r.Delete("/images/*", s.h(s.deleteImages))
	r.Post("/images/*", s.h(s.postImagesByName))

	// Containers
	r.Post("/containers/create", s.h(s.postContainersCreate))
	r.Get("/containers/json", s.h(s.getContainersJSON))
	r.Post("/containers/prune", s.h(s.postContainersPrune))
	r.Get("/containers/{id}/json", s.h(s.getContainersJSONByID))
	r.Post("/containers/{id}/start", s.h(s.postContainersStart))
	r.Post("/containers/{id}/stop", s.h(s.postContainersStop))
	r.Post("/containers/{id}/kill", s.h(s.postContainersKill))
	r.Post("/containers/{id}/wait", s.h(s.postContainersWait))
	r.Post("/containers/{id}/attach", s.h(s.postContainersAttach))
	r.Get("/containers/{id}/attach/ws", s.h(s.getContainersAttachWS))
	r.Get("/containers/{id}/logs", s.h(s.getContainersLogs))
	r.Delete("/containers/{id}", s.h(s.deleteContainers))
	r.Delete("/containers/{id}/{alias}", s.h(s.deleteContainersLink))
	r.Post("/containers/{id}/resize", s.h(s.postContainersResize))
	r.Post("/containers/{id}/restart", s.h(s.postContainersRestart))
	r.Post("/containers/{id}/pause", s.h(s.postContainersPause))
	r.Post("/containers/{id}/unpause", s.h(s.postContainersUnpause))
	r.Post("/containers/{id}/rename", s.h(s.postContainersRename))
	r.Post("/containers/{id}/update", s.h(s.postContainersUpdate))
	r.Get("/events", s.h(s.getEvents))
	r.Get("/containers/{id}/top", s.h(s.getContainersTop))
	r.Get("/containers/{id}/stats", s.h(s.getContainersStats))
	r.Head("/containers/{id}/archive", s.h(s.headContainersArchive))
	r.Get("/containers/{id}/archive", s.h(s.getContainersArchive))
	r.Put("/containers/{id}/archive", s.h(s.putContainersArchive))

	// Volumes (volumes.go)
	s.volumeRoutes(r)

	// Image operations and container filesystems (imageops.go)
	s.imageOpsRoutes(r)

	// Exec
	r.Post("/containers/{id}/exec", s.h(s.postContainersExec))
	r.Post("/exec/{id}/start", s.h(s.postExecStart))
	r.Post("/exec/{id}/resize", s.h(s.postExecResize))
	r.Get("/exec/{id}/json", s.h(s.getExecJSON))

	// Networks (networks.go)
	s.networkRoutes(r)

	swarmRoutes(r)

	// GET /distribution/{name}/json (names contain "/").
	r.Get("/distribution/*", s.h(s.getDistribution))

	// Known Docker routes not supported yet: 501, not 404.
	for _, rt := range []struct{ method, path string }{
		{"POST", "/build"},
		{"POST", "/build/prune"},
		{"GET", "/plugins"},
		{"GET", "/session"},
		{"POST", "/session"},
	} {
		r.Method(rt.method, rt.path, http.HandlerFunc(notImplemented))
	}
	return r
}

// imageSuffix splits "/images/<name>/<op>" where name may contain "/".
// Known ops: json, history, push, tag, get. No op: the name alone.
func imageSuffix(r *http.Request) (name, op string) {
	rest := chi.URLParam(r, "*")
	for _, o := range []string{"json", "history", "push", "tag", "get"} {
		if strings.HasSuffix(rest, "/"+o) {
			return strings.TrimSuffix(rest, "/"+o), o
		}
	}
	return rest, ""
}
