package agenthub

import (
	"context"
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

var _ engine.AgentSession = (*session)(nil)

// startResult answers a Start waiter.
type startResult struct {
	pid int
	err error
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
func (s *session) Start(ctx context.Context, run uint32, p proto.Process) (int, error) {
	h := s.hub
	w, err := h.addWaiter(s.id, run)
	if err != nil {
		return 0, err
	}
	defer h.removeWaiter(s.id, run, w)

	c, err := h.current(s.id)
	if err != nil {
		return 0, fmt.Errorf("start %s run %d: %w", s.id, run, err)
	}
	if err := c.sendControl(ctx, proto.TypeStart, proto.Start{Run: run, Process: p}); err != nil {
		return 0, &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("start %s run %d: agent connection failed", s.id, run), Err: err}
	}
	for {
		select {
		case r := <-w.ch:
			return r.pid, r.err
		case <-ctx.Done():
			return 0, fmt.Errorf("start %s run %d: %w", s.id, run, ctx.Err())
		case <-c.done:
		}
		// The connection ended before the answer: wait for the agent to
		// reconnect; its answer (or re-sent Exit) reaches w on the new one.
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
				return 0, fmt.Errorf("start %s run %d: %w", s.id, run, ctx.Err())
			}
			return 0, &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("start %s run %d: agent disconnected", s.id, run), Err: err}
		}
	}
}

// Signal delivers sig to the running process through the live connection.
func (s *session) Signal(ctx context.Context, sig int) error {
	c, err := s.hub.current(s.id)
	if err != nil {
		return fmt.Errorf("signal %d to %s: %w", sig, s.id, err)
	}
	if err := c.sendControl(ctx, proto.TypeSignal, proto.Signal{Signal: sig}); err != nil {
		return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("signal %d to %s: agent connection failed", sig, s.id), Err: err}
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

// addWaiter registers a pending Start of run; only one per run.
func (h *Hub) addWaiter(id string, run uint32) (*startWaiter, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	runs := h.waiters[id]
	if runs == nil {
		runs = make(map[uint32]*startWaiter)
		h.waiters[id] = runs
	}
	if runs[run] != nil {
		return nil, engine.Errorf(engine.KindConflict, "container %s run %d is already starting", id, run)
	}
	w := &startWaiter{ch: make(chan startResult, 1)}
	runs[run] = w
	return w, nil
}

// removeWaiter drops w if it is still the waiter of run.
func (h *Hub) removeWaiter(id string, run uint32, w *startWaiter) {
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
func (h *Hub) deliver(id string, run uint32, r startResult) {
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
