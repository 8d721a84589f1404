package dockerapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// timeoutParam reads ?t= (seconds), nil if absent.
func timeoutParam(r *http.Request) (*int, error) {
	t := r.URL.Query().Get("t")
	if t == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "invalid value for t: %s", t)
	}
	return &n, nil
}

// postContainersRestart: POST /containers/{id}/restart?t=&signal=.
func (s *Server) postContainersRestart(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := s.e.Restart(r.Context(), s.ns(r), chi.URLParam(r, "id"), t, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersPause: POST /containers/{id}/pause.
func (s *Server) postContainersPause(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Pause(r.Context(), s.ns(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersUnpause: POST /containers/{id}/unpause.
func (s *Server) postContainersUnpause(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Unpause(r.Context(), s.ns(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersRename: POST /containers/{id}/rename?name=.
func (s *Server) postContainersRename(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Rename(r.Context(), s.ns(r), chi.URLParam(r, "id"), r.URL.Query().Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersUpdate: POST /containers/{id}/update.
func (s *Server) postContainersUpdate(w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := decodeJSON(r, &u); err != nil {
		return err
	}
	warnings, err := s.e.Update(r.Context(), s.ns(r), chi.URLParam(r, "id"), u)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}

// getEvents: GET /events?since=&until=&filters= (docker events).
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	o := engine.EventOptions{Filters: f}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := r.URL.Query().Get(p.name); v != "" {
			t, err := engine.ParseTime(v)
			if err != nil {
				return err
			}
			*p.t = t
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	err = s.e.Events(r.Context(), s.ns(r), o, func(m events.Message) error {
		if err := enc.Encode(m); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil {
		s.log.Debug("events ended", "err", err)
	}
	if r.Context().Err() != nil {
		// Cut (shutdown, or the client left): end without the final
		// chunk, so the forwarder resumes instead of ending the stream.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// getContainersTop: GET /containers/{id}/top (docker top).
func (s *Server) getContainersTop(w http.ResponseWriter, r *http.Request) error {
	t, err := s.e.Top(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	// The agent lists processes as dockerd's default, ps -ef; other ps
	// arguments are refused rather than answered in the wrong shape.
	switch args := strings.TrimSpace(r.URL.Query().Get("ps_args")); args {
	case "", "-ef", "-e -f", "ef":
	default:
		return engine.Errorf(engine.KindInvalid, "ps arguments %q are not supported by Sockerless: docker top lists processes as ps -ef", args)
	}
	return writeJSON(w, http.StatusOK, t)
}

// getContainersStats: GET /containers/{id}/stats?stream= (docker stats).
func (s *Server) getContainersStats(w http.ResponseWriter, r *http.Request) error {
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	headers := false
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	err := s.e.Stats(r.Context(), s.ns(r), chi.URLParam(r, "id"), stream, func(st container.StatsResponse) error {
		if !headers {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			headers = true
		}
		if err := enc.Encode(st); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil && !headers {
		return err
	}
	return nil
}
