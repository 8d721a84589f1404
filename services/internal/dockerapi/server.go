package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/imageops"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/volumes"
)

// API versions: the newest is the one the docker CLI on these machines
// speaks (28.x); the oldest is the one DESIGN.md promises.
const (
	APIVersion    = "1.50"
	MinAPIVersion = "1.24"
)

// Config describes the server to clients.
type Config struct {
	// Version is Sockerless's own version shown by docker version.
	Version string
	// Namespace resolves a request's namespace (team auth); nil means
	// engine.DefaultNamespace for every request.
	Namespace func(*http.Request) string
	// Networks is the network plane, which serves the network routes and
	// the networks of containers.
	Networks *netplane.Plane
	// Volumes serves docker volume; nil answers its routes with 501.
	Volumes *volumes.Service
	// Client names the client side a request came through, whose machine
	// binds the published ports of the containers it creates (see
	// engine.Container.Client); nil or "" means none.
	Client func(*http.Request) string
	// Images carries out save, load, import, commit, diff, export,
	// history, push, image prune and system df; nil answers them with 501.
	Images *imageops.Service
	// NCPU and MemTotal are the resources of a container's function
	// instance (the function shape), which docker info reports as the
	// machine's: what a container gets. Zero: this process's CPUs and no
	// memory figure.
	NCPU     int
	MemTotal int64
	Logger   *slog.Logger
}

// Server is the Docker API handler.
type Server struct {
	e   *engine.Engine
	cfg Config
	log *slog.Logger
	mux chi.Router
}

// New returns the Docker API over e.
func New(e *engine.Engine, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "0.1.0"
	}
	s := &Server{e: e, cfg: cfg, log: cfg.Logger}
	s.mux = s.routes()
	return s
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP strips and checks the version prefix, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		v := m[1]
		if versionLess(v, MinAPIVersion) {
			writeError(w, s.log, engine.Errorf(engine.KindInvalid, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion))
			return
		}
		if versionLess(APIVersion, v) {
			writeError(w, s.log, engine.Errorf(engine.KindInvalid, "client version %s is too new. Maximum supported API version is %s", v, APIVersion))
			return
		}
		r2 := r.Clone(versionContext(r.Context(), v))
		r2.URL.Path = m[2]
		r2.URL.RawPath = ""
		r = r2
	}
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Docker-Experimental", "false")
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Server", "Sockerless/"+s.cfg.Version+" (linux)")
	s.mux.ServeHTTP(w, r)
}

// versionLess compares "major.minor" versions.
func versionLess(a, b string) bool {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	return am < bm || am == bm && an < bn
}

func splitVersion(v string) (int, int) {
	maj, min, _ := strings.Cut(v, ".")
	a, _ := strconv.Atoi(maj)
	b, _ := strconv.Atoi(min)
	return a, b
}

// handler is a route handler that returns its error.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) h(f handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			writeError(w, s.log, err)
		}
	}
}

func (s *Server) ns(r *http.Request) string {
	if s.cfg.Namespace != nil {
		return s.cfg.Namespace(r)
	}
	return engine.DefaultNamespace
}

func (s *Server) client(r *http.Request) string {
	if s.cfg.Client != nil {
		return s.cfg.Client(r)
	}
	return ""
}

// status maps an engine error kind to an HTTP status, as moby's errdefs.
func status(k engine.Kind) int {
	switch k {
	case engine.KindNotFound:
		return http.StatusNotFound
	case engine.KindInvalid:
		return http.StatusBadRequest
	case engine.KindConflict:
		return http.StatusConflict
	case engine.KindNotModified:
		return http.StatusNotModified
	case engine.KindNotImplemented:
		return http.StatusNotImplemented
	case engine.KindUnauthorized:
		return http.StatusUnauthorized
	case engine.KindUnavailable:
		return http.StatusServiceUnavailable
	case engine.KindForbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// writeError sends Docker's error body; 5xx details are logged and only a
// public message goes out.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	if errors.Is(err, context.Canceled) {
		return // client went away
	}
	code := status(engine.KindOf(err))
	msg := publicMessage(err)
	if code >= 500 {
		log.Error("request failed", "err", err)
	}
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	WriteJSONError(w, code, msg)
}

// publicMessage is what a client is told of err: an engine error's own
// message, else the error's text.
func publicMessage(err error) string {
	var ee *engine.Error
	if errors.As(err, &ee) {
		return ee.Message
	}
	return err.Error()
}

// WriteJSONError writes {"message": msg} with status code.
func WriteJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return jsonEncode(w, v)
}

// jsonEncode writes v after the headers are out; a failed write means the
// client left, which is no error of the request.
func jsonEncode(w http.ResponseWriter, v any) error {
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

// decodeJSON reads a request body into v; bad JSON is docker's 400.
func decodeJSON(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return engine.Errorf(engine.KindInvalid, "invalid JSON: %s", err.Error())
	}
	return nil
}

// boolParam reads docker's boolean query values ("1", "true", "True").
func boolParam(r *http.Request, name string) bool {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// filtersParam decodes ?filters= in both of docker's JSON shapes.
func filtersParam(r *http.Request) (engine.Filters, error) {
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return engine.Filters{}, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &m); err == nil {
		f := engine.Filters{}
		for k, vs := range m {
			for v, ok := range vs {
				if ok {
					f[k] = append(f[k], v)
				}
			}
		}
		return f, nil
	}
	var l map[string][]string
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "invalid filter: %s", err.Error())
	}
	return engine.Filters(l), nil
}

func notImplemented(w http.ResponseWriter, r *http.Request) {
	WriteJSONError(w, http.StatusNotImplemented, fmt.Sprintf("%s %s is not supported by Sockerless yet", r.Method, r.URL.Path))
}
