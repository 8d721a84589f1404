package gcpsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sockerless/sockerless/services/internal/gcpsim/functions"
	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
	"github.com/sockerless/sockerless/services/internal/gcpsim/storage"
)

// routes is the HTTP listener's handler.
func (s *Server) routes(registry http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/", registry)
	mux.Handle("/upload/", s.functions.UploadHandler())
	mux.HandleFunc("/functions/", s.invoke)
	mux.Handle(storage.Prefix, storage.New(s.storageDir(), s.logger.With("component", "storage")))
	mux.HandleFunc("GET /sim/v1/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Stats())
	})
	mux.HandleFunc("GET /sim/v1/instances", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Instances())
	})
	mux.HandleFunc("GET /sim/v1/logs", s.getLogs)
	mux.HandleFunc("GET /sim/v1/host-ports", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, HostPorts{Ports: s.HostPorts()})
	})
	mux.HandleFunc("POST /sim/v1/host-ports", s.postHostPorts)
	return mux
}

// HostPorts is the body of /sim/v1/host-ports: TCP ports of the host's
// loopback that function instances reach (GET), or ports to add (POST).
type HostPorts struct {
	Ports []int `json:"ports"`
}

// postHostPorts adds host ports for the instances that start from now on
// (a control plane that reuses a running gcpsim names its callback port).
func (s *Server) postHostPorts(w http.ResponseWriter, r *http.Request) {
	var req HostPorts
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, p := range req.Ports {
		if p < 1 || p > 65535 {
			http.Error(w, fmt.Sprintf("bad request: port %d out of range", p), http.StatusBadRequest)
			return
		}
	}
	for _, p := range req.Ports {
		s.AllowHostPort(p)
	}
	writeJSON(w, HostPorts{Ports: s.HostPorts()})
}

// invoke serves a function URL, /functions/PROJECT/LOCATION/ID/PATH…, by
// proxying the request, with path /PATH…, to an instance of the serving
// revision of service ID.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/functions/"), "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		http.Error(w, "Page not found: want /functions/PROJECT/LOCATION/FUNCTION/", http.StatusNotFound)
		return
	}
	name := resname.Location{Project: parts[0], Location: parts[1]}.Child("services", parts[2])
	rev, err := s.run.Serving(name)
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		http.Error(w, "Page not found: no function "+parts[2], http.StatusNotFound)
		return
	default:
		http.Error(w, "Service Unavailable: "+status.Convert(err).Message(), http.StatusServiceUnavailable)
		return
	}
	if functions.IsStub(rev.Image) {
		http.Error(w, "function source not deployed: gcpsim builds no source; set the service's image with Cloud Run UpdateService", http.StatusInternalServerError)
		return
	}
	rest := "/"
	if len(parts) == 4 {
		rest += parts[3]
	}
	out := r.Clone(r.Context())
	out.URL = &url.URL{Path: rest, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	s.instances.Serve(w, out, rev)
}

// getLogs serves instance log entries as JSON, filtered by the query
// parameter "filter" (Cloud Logging syntax, see logging.ParseFilter).
func (s *Server) getLogs(w http.ResponseWriter, r *http.Request) {
	f, err := logging.ParseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	entries := s.logs.Entries(f.Match)
	if entries == nil {
		entries = []logging.Entry{}
	}
	writeJSON(w, entries)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
