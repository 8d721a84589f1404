package agenthub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// session is the engine.AgentSession of one container. It is bound to the
// container, not to a connection: every call uses the connection current at
// that moment, so it keeps working across reconnects.
type session struct {
	hub *Hub
	id  string
}

var _ engine.StreamSession = (*session)(nil)

// Waiter keys: a run of the main process, or an exec.
func runKey(run uint32) string { return fmt.Sprintf("run/%d", run) }
func execKey(id string) string { return "exec/" + id }

// startResult answers a Start waiter.
type startResult struct {
	pid  int
	err  error
	body json.RawMessage // a Response's body
}

// startWaiter is a pending Start of one run.
type startWaiter struct {
	ch chan startResult // buffered; receives at most one result
}

// Start sends TypeStart for run and waits for the agent's answer: the pid
// from TypeStarted, or the KindInvalid error of a start-failure TypeExit
// (returned after the exit is stored). An Exit without error for a run whose
// Started frame was lost, or a reconnect whose Hello reports the run as
// running, answers with pid 0. If the connection ends, Start waits up to the
// reconnect grace for the agent to come back; otherwise it returns a
// KindUnavailable error. It returns ctx's error (wrapped) when ctx ends.
func (s *session) Start(ctx context.Context, st proto.Start) (int, error) {
	what := fmt.Sprintf("start %s run %d", s.id, st.Run)
	return s.request(ctx, runKey(st.Run), what, proto.TypeStart, st)
}

// Exec sends TypeExecStart and waits for the agent's answer exactly as
// Start does, with TypeExecStarted and TypeExecExit in their places.
func (s *session) Exec(ctx context.Context, e proto.ExecStart) (int, error) {
	return s.request(ctx, execKey(e.ID), fmt.Sprintf("exec %s in %s", e.ID, s.id), proto.TypeExecStart, e)
}

// request sends a control frame that the agent answers with a started or
// an exit frame for key, and waits for that answer across reconnects.
func (s *session) request(ctx context.Context, key, what string, t proto.Type, msg any) (int, error) {
	h := s.hub
	w, err := h.addWaiter(s.id, key)
	if err != nil {
		return 0, err
	}
	defer h.removeWaiter(s.id, key, w)

	c, err := h.current(s.id)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := c.sendControl(ctx, t, msg); err != nil {
		if engine.KindOf(err) == engine.KindInvalid {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return 0, &engine.Error{Kind: engine.KindUnavailable, Message: what + ": agent connection failed", Err: err}
	}
	for {
		select {
		case r := <-w.ch:
			return r.pid, r.err
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-c.done:
		}
		// The connection ended before the answer: wait for the agent to
		// reconnect; its answer (or re-sent exit) reaches w on the new one.
		gctx, cancel := context.WithTimeout(ctx, h.reconnectGrace)
		c, err = h.await(gctx, s.id)
		cancel()
		if err != nil {
			select {
			case r := <-w.ch:
				return r.pid, r.err
			default:
			}
			if ctx.Err() != nil {
				return 0, fmt.Errorf("%s: %w", what, ctx.Err())
			}
			return 0, &engine.Error{Kind: engine.KindUnavailable, Message: what + ": agent disconnected", Err: err}
		}
	}
}

// Request asks the agent for information (proto.RequestTop, …) and
// returns the body of its answer. A request whose answer is lost with a
// dropped connection fails when ctx ends.
func (s *session) Request(ctx context.Context, kind string, args []string) (json.RawMessage, error) {
	h := s.hub
	id := fmt.Sprintf("%d", h.reqSeq.Add(1))
	key := "req/" + id
	w, err := h.addWaiter(s.id, key)
	if err != nil {
		return nil, err
	}
	defer h.removeWaiter(s.id, key, w)
	c, err := h.current(s.id)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", kind, s.id, err)
	}
	if err := c.sendControl(ctx, proto.TypeRequest, proto.Request{ID: id, Kind: kind, Args: args}); err != nil {
		return nil, &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("%s of %s: agent connection failed", kind, s.id), Err: err}
	}
	select {
	case r := <-w.ch:
		return r.body, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s of %s: %w", kind, s.id, ctx.Err())
	}
}

// Stdin sends input on a stdin stream, in frames of at most MaxPayload.
// With an agent that credits consumed input, it blocks while proto.Window
// bytes of the stream are uncredited: a process that does not read, or a
// slow extraction, slows the sender instead of filling memory.
func (s *session) Stdin(ctx context.Context, stream uint32, p []byte) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("stdin of %s: %w", s.id, err)
	}
	for len(p) > 0 {
		n := min(len(p), proto.MaxPayload)
		if err := c.reserveStdin(ctx, stream, n); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("stdin of %s: agent connection failed", s.id), Err: err}
		}
		if err := c.send(ctx, proto.Frame{Type: proto.TypeStdin, Stream: stream, Payload: p[:n]}); err != nil {
			return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("stdin of %s: agent connection failed", s.id), Err: err}
		}
		p = p[n:]
	}
	return nil
}

// CloseStdin closes a stdin stream.
func (s *session) CloseStdin(ctx context.Context, stream uint32) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("close stdin of %s: %w", s.id, err)
	}
	c.forgetStdin(stream)
	if err := c.send(ctx, proto.Frame{Type: proto.TypeStdinClose, Stream: stream}); err != nil {
		return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("close stdin of %s: agent connection failed", s.id), Err: err}
	}
	return nil
}

// Resize sets a terminal's size.
func (s *session) Resize(ctx context.Context, r proto.Resize) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("resize %s: %w", s.id, err)
	}
	if err := c.sendControl(ctx, proto.TypeResize, r); err != nil {
		return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("resize %s: agent connection failed", s.id), Err: err}
	}
	return nil
}

// Signal delivers sig to the running process through the live connection.
func (s *session) Signal(ctx context.Context, sig int) error {
	return s.signal(ctx, proto.Signal{Signal: sig})
}

// SignalAll delivers sig to every process of the container.
func (s *session) SignalAll(ctx context.Context, sig int) error {
	return s.signal(ctx, proto.Signal{Signal: sig, All: true})
}

func (s *session) signal(ctx context.Context, sig proto.Signal) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("signal %d to %s: %w", sig.Signal, s.id, err)
	}
	if err := c.sendControl(ctx, proto.TypeSignal, sig); err != nil {
		return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("signal %d to %s: agent connection failed", sig.Signal, s.id), Err: err}
	}
	return nil
}

// Network replaces the container's network view (proto.TypeNetwork).
func (s *session) Network(ctx context.Context, v proto.NetworkView) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("network view of %s: %w", s.id, err)
	}
	if err := c.sendControl(ctx, proto.TypeNetwork, v); err != nil {
		return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("network view of %s: agent connection failed", s.id), Err: err}
	}
	return nil
}

// Shutdown tells the agent the container is removed.
func (s *session) Shutdown(ctx context.Context) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("shutdown %s: %w", s.id, err)
	}
	if err := c.send(ctx, proto.Frame{Type: proto.TypeShutdown, Stream: proto.StreamControl}); err != nil {
		return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("shutdown %s: agent connection failed", s.id), Err: err}
	}
	return nil
}

// addWaiter registers a pending Start (or Exec) under key; one per key.
func (h *Hub) addWaiter(id string, run string) (*startWaiter, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	runs := h.waiters[id]
	if runs == nil {
		runs = make(map[string]*startWaiter)
		h.waiters[id] = runs
	}
	if runs[run] != nil {
		return nil, engine.Errorf(engine.KindConflict, "container %s: %s is already starting", id, run)
	}
	w := &startWaiter{ch: make(chan startResult, 1)}
	runs[run] = w
	return w, nil
}

// removeWaiter drops w if it is still the waiter of run.
func (h *Hub) removeWaiter(id string, run string, w *startWaiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if runs := h.waiters[id]; runs[run] == w {
		delete(runs, run)
		if len(runs) == 0 {
			delete(h.waiters, id)
		}
	}
}

// deliver answers the pending Start of run, if any; later answers for the
// same run are ignored.
func (h *Hub) deliver(id string, run string, r startResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	runs := h.waiters[id]
	w := runs[run]
	if w == nil {
		return
	}
	delete(runs, run)
	if len(runs) == 0 {
		delete(h.waiters, id)
	}
	w.ch <- r
}
