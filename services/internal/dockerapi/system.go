package dockerapi

import (
	"net/http"
	"runtime"
	"time"

	"github.com/moby/moby/api/types/system"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// getPing: GET|HEAD /_ping.
func (s *Server) getPing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", "0")
		return
	}
	_, _ = w.Write([]byte("OK"))
}

// getVersion: GET /version.
func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Sockerless"},
		Version:       s.cfg.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: "cloud-run-functions-gen2",
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: s.cfg.Version,
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH},
		}},
	}
	return writeJSON(w, http.StatusOK, v)
}

// getInfo: GET /info.
func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.e.List(r.Context(), s.ns(r), engine.ListOptions{All: true})
	if err != nil {
		return err
	}
	imgs, err := s.e.Images(r.Context())
	if err != nil {
		return err
	}
	info := system.Info{
		ID:                 "sockerless",
		Containers:         len(cs),
		Images:             len(imgs),
		Driver:             "cloud-run-functions",
		LoggingDriver:      "sockerless",
		CgroupDriver:       "none",
		OperatingSystem:    "Sockerless (Google Cloud Run functions)",
		OSType:             "linux",
		Architecture:       "x86_64",
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		Name:               "sockerless",
		ServerVersion:      s.cfg.Version,
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		KernelVersion:      "cloud-run-functions-gen2",
		DefaultRuntime:     "cloud-run-function",
		Runtimes:           map[string]system.RuntimeWithStatus{},
	}
	if s.cfg.NCPU > 0 {
		info.NCPU = s.cfg.NCPU
	}
	info.MemTotal = s.cfg.MemTotal
	for _, c := range cs {
		switch c.State.Status {
		case engine.StatusRunning:
			info.ContainersRunning++
		case engine.StatusPaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	return writeJSON(w, http.StatusOK, info)
}
