package dockerapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// postContainersExec: POST /containers/{id}/exec (docker exec, create).
func (s *Server) postContainersExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id, err := s.e.ExecCreate(r.Context(), s.ns(r), chi.URLParam(r, "id"), engine.ExecConfig{
		Cmd: req.Cmd, Env: req.Env, WorkingDir: req.WorkingDir, User: req.User,
		Privileged: req.Privileged, Tty: req.Tty, AttachStdin: req.AttachStdin,
		AttachStdout: req.AttachStdout, AttachStderr: req.AttachStderr, DetachKeys: req.DetachKeys,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, common.IDResponse{ID: id})
}

// postExecStart: POST /exec/{id}/start — detached, or hijacked with the
// exec's streams.
func (s *Server) postExecStart(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ns, id := s.ns(r), chi.URLParam(r, "id")
	_, x, err := s.e.Exec(r.Context(), ns, id)
	if err != nil {
		return err
	}
	o := engine.ExecStartOptions{Detach: req.Detach}
	if req.ConsoleSize != nil {
		o.Rows, o.Cols = uint16(req.ConsoleSize[0]), uint16(req.ConsoleSize[1])
	}
	if req.Detach {
		if err := s.e.ExecStart(r.Context(), ns, id, o, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// As moby: the start request's Tty says how output is framed (raw or
	// multiplexed); the exec's own Tty (at create) says whether it runs on
	// a terminal.
	tty := req.Tty
	conn, buf, err := hijack(w, r, tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	if x.AttachStdin {
		o.Stdin = buf.Reader
	} else {
		go drainInput(buf.Reader, cancel)
	}
	fw := &frameWriter{w: conn, raw: tty}
	if err := s.e.ExecStart(ctx, ns, id, o, fw.write); err != nil {
		s.log.Debug("exec ended", "exec", id, "err", err)
		_ = fw.write(engine.LogEntry{Stream: engine.Stderr, Data: []byte(err.Error() + "\n")})
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}

// getExecJSON: GET /exec/{id}/json (exec inspect).
func (s *Server) getExecJSON(w http.ResponseWriter, r *http.Request) error {
	c, x, err := s.e.Exec(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pc := &container.ExecProcessConfig{Tty: x.Tty, User: x.User, Privileged: &x.Privileged}
	if len(x.Cmd) > 0 {
		pc.Entrypoint, pc.Arguments = x.Cmd[0], x.Cmd[1:]
	}
	return writeJSON(w, http.StatusOK, container.ExecInspectResponse{
		ID: x.ID, Running: x.Running, ExitCode: x.ExitCode, ProcessConfig: pc,
		OpenStdin: x.AttachStdin, OpenStdout: x.AttachStdout, OpenStderr: x.AttachStderr,
		ContainerID: c.ID, DetachKeys: []byte(x.DetachKeys), Pid: x.Pid,
	})
}

// size reads ?h=&w= of the resize endpoints.
func size(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, engine.Errorf(engine.KindInvalid, "invalid resize size: h=%q w=%q", r.URL.Query().Get("h"), r.URL.Query().Get("w"))
	}
	return uint16(h), uint16(wd), nil
}

// postExecResize: POST /exec/{id}/resize.
func (s *Server) postExecResize(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := size(r)
	if err != nil {
		return err
	}
	if err := s.e.ExecResize(r.Context(), s.ns(r), chi.URLParam(r, "id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// postContainersResize: POST /containers/{id}/resize.
func (s *Server) postContainersResize(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := size(r)
	if err != nil {
		return err
	}
	if err := s.e.Resize(r.Context(), s.ns(r), chi.URLParam(r, "id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
