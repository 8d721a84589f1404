package agenthub

import (
	"fmt"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Batch limits: a batch holds only frames already read, at most these many.
const (
	maxBatchFrames = 1024
	maxBatchBytes  = 1 << 20
)

// process handles read frames in order until the connection ends (nil) or a
// frame cannot be handled (the error; the caller closes the connection).
func (c *conn) process() error {
	var held *proto.Frame // a control frame that ended the previous batch
	for {
		var f proto.Frame
		if held != nil {
			f, held = *held, nil
		} else {
			var ok bool
			select {
			case f, ok = <-c.in:
				if !ok {
					return nil
				}
			case <-c.ctx.Done():
				return nil
			}
		}
		if f.Type != proto.TypeData {
			if err := c.handleControl(f); err != nil {
				return err
			}
			continue
		}
		batch := []proto.Frame{f}
		size := len(f.Payload)
	fill:
		for len(batch) < maxBatchFrames && size < maxBatchBytes {
			select {
			case g, ok := <-c.in:
				if !ok {
					break fill
				}
				if g.Type != proto.TypeData {
					held = &g
					break fill
				}
				batch = append(batch, g)
				size += len(g.Payload)
			default:
				break fill
			}
		}
		// A run's last output and its exit, read together, are stored in
		// one step when the backend can; it may have the hub wait a moment
		// for an exit that follows the output.
		oes, canJoin := c.hub.backend.(OutputExitStorer)
		if canJoin && held == nil && len(batch) < maxBatchFrames && size < maxBatchBytes {
			if g, ok := c.linger(oes.OutputLinger()); ok {
				if g.Type != proto.TypeData {
					held = &g
				} else {
					batch = append(batch, g)
				}
			}
		}
		var exit *proto.Exit
		if held != nil && held.Type == proto.TypeExit {
			if canJoin {
				var e proto.Exit
				if err := held.Decode(&e); err != nil {
					return fmt.Errorf("%w: %w", errProtocol, err)
				}
				exit, held = &e, nil
			}
		}
		if err := c.storeBatch(batch, exit); err != nil {
			return err
		}
	}
}

// linger waits up to d for the next frame read; false if none came.
func (c *conn) linger(d time.Duration) (proto.Frame, bool) {
	if d <= 0 {
		return proto.Frame{}, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case g, ok := <-c.in:
		return g, ok
	case <-t.C:
	case <-c.ctx.Done():
	}
	return proto.Frame{}, false
}

// storeBatch stores the new frames of batch in one StoreOutput call (with
// exit, if not nil, in one StoreOutputExit), then acknowledges every
// stream the batch touched, and the exit. Frames at or below the stream's
// acked seq are duplicates (re-sent after a reconnect) and dropped.
func (c *conn) storeBatch(batch []proto.Frame, exit *proto.Exit) error {
	var (
		entries []engine.LogEntry
		last    = make(map[uint32]uint64)
		order   []uint32 // streams in order of first appearance
		seen    = make(map[uint32]bool)
	)
	for _, f := range batch {
		if !seen[f.Stream] {
			seen[f.Stream] = true
			order = append(order, f.Stream)
		}
		prev := c.acked[f.Stream]
		if l, ok := last[f.Stream]; ok {
			prev = l
		}
		if f.Seq <= prev {
			continue
		}
		if f.Seq != prev+1 {
			c.log.Warn("agent data sequence gap", "stream", f.Stream, "after", prev, "seq", f.Seq)
		}
		last[f.Stream] = f.Seq
		if len(f.Payload) == 0 {
			continue
		}
		t := f.Time
		if t.IsZero() {
			t = time.Now().UTC()
		}
		entries = append(entries, engine.LogEntry{Stream: int(f.Stream), Time: t, Data: f.Payload})
	}
	switch {
	case exit != nil && len(last) > 0:
		if err := c.hub.backend.(OutputExitStorer).StoreOutputExit(c.ctx, c.id, entries, last, *exit); err != nil {
			return fmt.Errorf("store output and exit of %s run %d: %w", c.id, exit.Run, err)
		}
		for s, seq := range last {
			c.acked[s] = seq
		}
	case len(last) > 0:
		if err := c.hub.backend.StoreOutput(c.ctx, c.id, entries, last); err != nil {
			return fmt.Errorf("store output of %s: %w", c.id, err)
		}
		for s, seq := range last {
			c.acked[s] = seq
		}
	case exit != nil: // duplicates only: the exit alone
		if err := c.hub.backend.StoreExit(c.ctx, c.id, *exit); err != nil {
			return fmt.Errorf("store exit of %s run %d: %w", c.id, exit.Run, err)
		}
	}
	for _, s := range order {
		// A stream with duplicates only is acked again, so the agent drops them.
		if c.acked[s] == 0 {
			continue
		}
		if err := c.send(c.ctx, proto.Frame{Type: proto.TypeAck, Stream: s, Seq: c.acked[s]}); err != nil {
			return err
		}
	}
	if exit != nil {
		return c.exitStored(*exit)
	}
	return nil
}

// exitStored tells Start waiters and the agent that exit e is stored.
func (c *conn) exitStored(e proto.Exit) error {
	c.log.Info("agent run exited", "run", e.Run, "code", e.Code, "signal", e.Signal, "error", e.Error)
	res := startResult{}
	if e.Error != "" {
		res.err = engine.Errorf(engine.KindInvalid, "%s", e.Error)
	}
	c.hub.deliver(c.id, runKey(e.Run), res)
	return c.sendControl(c.ctx, proto.TypeExitAck, proto.ExitAck{Run: e.Run})
}

// handleControl handles one agent→hub control frame.
func (c *conn) handleControl(f proto.Frame) error {
	switch f.Type {
	case proto.TypeStarted:
		var st proto.Started
		if err := f.Decode(&st); err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		c.log.Debug("agent started run", "run", st.Run, "pid", st.Pid)
		c.hub.deliver(c.id, runKey(st.Run), startResult{pid: st.Pid})
		return nil
	case proto.TypeExit:
		var e proto.Exit
		if err := f.Decode(&e); err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		if err := c.hub.backend.StoreExit(c.ctx, c.id, e); err != nil {
			return fmt.Errorf("store exit of %s run %d: %w", c.id, e.Run, err)
		}
		return c.exitStored(e)
	case proto.TypeResponse:
		var r proto.Response
		if err := f.Decode(&r); err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		res := startResult{body: r.Body}
		if r.Error != "" {
			res.err = engine.Errorf(engine.KindInternal, "agent: %s", r.Error)
		}
		c.hub.deliver(c.id, "req/"+r.ID, res)
		return nil
	case proto.TypeExecStarted:
		var st proto.ExecStarted
		if err := f.Decode(&st); err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		c.hub.deliver(c.id, execKey(st.ID), startResult{pid: st.Pid})
		return nil
	case proto.TypeExecExit:
		var e proto.ExecExit
		if err := f.Decode(&e); err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		// Like Exit: stored only after the output read before it.
		if err := c.hub.backend.StoreExecExit(c.ctx, c.id, e); err != nil {
			return fmt.Errorf("store exit of %s exec %s: %w", c.id, e.ID, err)
		}
		res := startResult{}
		if e.Error != "" {
			res.err = engine.Errorf(engine.KindInvalid, "%s", e.Error)
		}
		c.hub.deliver(c.id, execKey(e.ID), res)
		return c.sendControl(c.ctx, proto.TypeExecExitAck, proto.ExecExitAck{ID: e.ID})
	case proto.TypeListening:
		var l proto.Listening
		if err := f.Decode(&l); err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		c.hub.backend.AgentListening(c.ctx, c.id, l.Ports)
		return nil
	case proto.TypeHello:
		c.log.Warn("agent sent a second hello; ignored")
		return nil
	default:
		c.log.Warn("agent sent an unexpected frame; ignored", "type", f.Type.String())
		return nil
	}
}
