// Package server is the agent's HTTP face: the function instance's port.
// GET /healthz answers 200; POST / with a proto.Invocation serves that
// container (package instance) and holds the response open for the
// container's life. An instance serves one invocation (concurrency 1): a
// second POST gets 429. When the invocation ends the response is written,
// the HTTP server drains, and Serve returns so the process (and with it the
// instance) can end.
//
// The invocation's own request context does not end the container: if the
// caller goes away (a control plane restart), the process keeps running and
// the agent keeps (re)dialing the hub; the instance ends on Shutdown, after
// the linger time, when the hub stays unreachable, or on SIGTERM while idle.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/internal/instance"
	"github.com/sockerless/sockerless/agent/internal/mounts"
	"github.com/sockerless/sockerless/agent/internal/process"
	"github.com/sockerless/sockerless/agent/internal/session"
	"github.com/sockerless/sockerless/agent/proto"
)

// drainTimeout bounds the graceful HTTP shutdown after the invocation.
const drainTimeout = 10 * time.Second

// maxBody bounds the invocation request body.
const maxBody = 1 << 20

// Config configures a Server.
type Config struct {
	// Process configures the process supervisor (user database paths).
	Process process.Config
	// Session holds the hub connection's timings (zero: defaults).
	Session session.Config
	// Stdout and Stderr receive a copy of the container's output.
	Stdout, Stderr io.Writer
	// Signals are the signals the agent itself receives (SIGTERM from the
	// platform): forwarded to the running process, or ending an idle agent.
	Signals <-chan os.Signal
	// Mounter applies the invocation's mounts before the agent dials
	// back; nil applies them in this process.
	Mounter mounts.Mounter
	Logger  *slog.Logger
}

// Server serves one invocation on an HTTP listener.
type Server struct {
	cfg Config
	log *slog.Logger
	sup *process.Supervisor

	mu       sync.Mutex
	busy     bool               // an invocation has been accepted
	serving  string             // the container of that invocation
	active   *instance.Instance // the invocation being served
	runCtx   context.Context    // Serve's context, for the instance
	finished chan struct{}      // closed once the invocation's response is written
	ln       net.Listener       // closed before the final answer (see stopListening)
	lnClosed bool
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pc := cfg.Process
	pc.Logger = cfg.Logger
	return &Server{cfg: cfg, log: cfg.Logger, sup: process.New(pc), finished: make(chan struct{})}
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /{$}", s.postInvocation)
	return mux
}

// Serve serves HTTP on ln until the invocation has been answered, ctx ends,
// or a signal arrives while no invocation runs; then it drains the HTTP
// server, stops the process supervisor and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.runCtx = ctx
	s.ln = ln
	s.mu.Unlock()

	supCtx, stopSup := context.WithCancel(context.Background())
	supDone := make(chan error, 1)
	go func() { supDone <- s.sup.Run(supCtx) }()

	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	s.log.Info("agent listening", "addr", ln.Addr().String())

	var err error
	for loop := true; loop; {
		select {
		case <-s.finished:
			loop = false
		case <-ctx.Done():
			loop = false
		case e := <-served:
			s.mu.Lock()
			closing := s.lnClosed
			s.mu.Unlock()
			if closing { // stopListening: the answer is being written
				<-s.finished
				loop = false
				continue
			}
			err = fmt.Errorf("serve http: %w", e)
			loop = false
		case sig := <-s.cfg.Signals:
			s.mu.Lock()
			inst := s.active
			s.mu.Unlock()
			if inst == nil {
				s.log.Info("signal while idle; exiting", "signal", sig.String())
				loop = false
				continue
			}
			inst.Terminate()
		}
	}
	cancel() // ends a running instance if we stop for another reason
	dctx, dcancel := context.WithTimeout(context.Background(), drainTimeout)
	defer dcancel()
	if e := hs.Shutdown(dctx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		s.log.Warn("drain http server", "err", e)
		hs.Close()
	}
	stopSup()
	if e := <-supDone; e != nil && err == nil {
		err = e
	}
	return err
}

// postInvocation serves POST /: one container, for its whole life.
func (s *Server) postInvocation(w http.ResponseWriter, r *http.Request) {
	var inv proto.Invocation
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&inv); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid invocation: " + err.Error()})
		return
	}
	if inv.Resume {
		s.resumeInvocation(w, r, inv.ContainerID)
		return
	}
	if inv.ContainerID == "" || inv.CallbackURL == "" || inv.Secret == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "invalid invocation: containerId, callbackUrl and secret are required"})
		return
	}
	s.mu.Lock()
	if s.busy {
		s.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"message": "instance busy: it serves one container"})
		return
	}
	s.busy = true
	inst := instance.New(instance.Config{
		Invocation: inv,
		Supervisor: s.sup,
		Session:    s.cfg.Session,
		Stdout:     s.cfg.Stdout,
		Stderr:     s.cfg.Stderr,
		Mounter:    s.cfg.Mounter,
		Logger:     s.log,
	})
	s.active = inst
	s.serving = inv.ContainerID
	ctx := s.runCtx
	s.mu.Unlock()
	if ctx == nil { // Handler used without Serve
		ctx = r.Context()
	}

	s.log.Info("invocation", "container", inv.ContainerID, "callback", inv.CallbackURL, "lingerSeconds", inv.LingerSeconds)
	err := inst.Run(ctx)

	s.mu.Lock()
	s.active = nil
	s.mu.Unlock()
	s.stopListening()
	// The instance ends after this answer: the connection must not go
	// back to the platform's pool of kept-alive connections, where the
	// next request would be written to a process on its way out.
	w.Header().Set("Connection", "close")
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"message": err.Error()})
	} else {
		writeJSON(w, http.StatusOK, map[string]string{"status": "done"})
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	close(s.finished)
}

// resumeInvocation holds a resumed invocation (proto.Invocation.Resume) of
// the container this instance serves until the instance's invocation
// ends; for another container it answers 409 at once.
func (s *Server) resumeInvocation(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	if id == "" || serving != id {
		writeJSON(w, http.StatusConflict, map[string]string{"message": "this instance does not serve container " + id})
		return
	}
	s.log.Info("invocation resumed", "container", id)
	select {
	case <-s.finished:
		w.Header().Set("Connection", "close") // as the invocation's own answer
		writeJSON(w, http.StatusOK, map[string]string{"status": "done"})
	case <-r.Context().Done():
	}
}

// stopListening closes the listener before the final answer: the platform
// sees an instance that answered as idle and may route the next request to
// it, and a refused connection (not a 429 from an agent on its way out) is
// what makes it pick a fresh instance.
func (s *Server) stopListening() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil && !s.lnClosed {
		s.lnClosed = true
		_ = s.ln.Close()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
