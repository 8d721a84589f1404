package dockerapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// DockerSockets are the paths of the requesting client's own Docker
	// socket (see engine.CreateRequest.DockerSockets); nil: none.
	DockerSockets func(*http.Request) []string
	// Login checks docker login's credentials; nil answers POST /auth
	// with 501.
	Login Login
	// Images carries out save, load, import, commit, diff, export,
	// history, push, image prune and system df; nil answers them with 501.
	Images *imageops.Service
	// MaxBodyBytes bounds every request body but the streamed ones
	// (archive uploads, image load and import); 0 means DefaultMaxBody.
	MaxBodyBytes int64
	// NCPU and MemTotal are the resources of a container's function
	// instance (the function shape), which docker info reports as the
	// machine's: what a container gets. Zero: this process's CPUs and no
	// memory figure.
	NCPU     int
	MemTotal int64
	Logger   *slog.Logger
}

// DefaultMaxBody is Config.MaxBodyBytes's default: far above any create,
// exec or update body docker sends, far below what would bloat every
// later list and the store.
const DefaultMaxBody = 4 << 20

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
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBody
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
	if r.Body != nil && !streamsBody(r) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
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

func (s *Server) dockerSockets(r *http.Request) []string {
	if s.cfg.DockerSockets != nil {
		return s.cfg.DockerSockets(r)
	}
	return nil
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
	case engine.KindTooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// writeError sends Docker's error body. A 5xx answer carries a generic
// message with a reference; the detail goes to the log under that reference
// (a 501 names the unsupported option, which is no internal detail). Other
// statuses carry the engine's Docker-compatible text.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	if errors.Is(err, context.Canceled) {
		return // client went away
	}
	code := status(engine.KindOf(err))
	msg := publicMessage(err)
	var se *statusError
	if errors.As(err, &se) {
		code, msg = se.code, se.msg
	}
	if code >= 500 && code != http.StatusNotImplemented {
		ref := errorRef()
		log.Error("request failed", "status", code, "ref", ref, "err", err)
		// An engine error's Message was written for the client (Docker's
		// own 500 texts, e.g. a published port already taken); only an
		// unclassified error is replaced by a generic answer.
		var ee *engine.Error
		if se == nil && !errors.As(err, &ee) {
			msg = genericMessage(code, ref)
		}
	}
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	WriteJSONError(w, code, msg)
}

// genericMessage is what a client is told of a server-side failure.
func genericMessage(code int, ref string) string {
	hint := "see the control plane's log"
	if code == http.StatusServiceUnavailable {
		hint = "try again; the control plane's log has the detail"
	}
	return fmt.Sprintf("%s: %s (ref %s)", http.StatusText(code), hint, ref)
}

// errorRef is a short random reference tying a generic answer to its log line.
func errorRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// publicMessage is what a client is told of a non-5xx err: an engine
// error's own message, else the error's text.
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
		return bodyError(err)
	}
	return nil
}

// bodyError is the error of a request body that could not be decoded:
// 413 over the size limit, else docker's 400.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &statusError{code: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request body is larger than %d bytes (setting --max-body)", tooLarge.Limit)}
	}
	return engine.Errorf(engine.KindInvalid, "invalid JSON: %s", err.Error())
}

// statusError is an answer with its own status, for what has no engine
// error kind (413).
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// streamsBody reports whether r's body is a stream of any size (a tar
// archive) rather than a JSON document.
func streamsBody(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/archive"):
		return true
	case r.Method == http.MethodPost && (p == "/images/load" || p == "/images/create" || p == "/build"):
		return true
	}
	return false
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
	if len(raw) > maxFilterBytes {
		return nil, engine.Errorf(engine.KindInvalid, "invalid filter: longer than %d bytes", maxFilterBytes)
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

// maxFilterBytes bounds ?filters=: some filters are regular expressions
// matched against every object (name), so a huge one would cost seconds
// per request. What docker's clients send is a few hundred bytes.
const maxFilterBytes = 16 << 10

func notImplemented(w http.ResponseWriter, r *http.Request) {
	WriteJSONError(w, http.StatusNotImplemented, fmt.Sprintf("%s %s is not supported by Sockerless yet", r.Method, r.URL.Path))
}
