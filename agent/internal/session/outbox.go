package session

import (
	"context"
	"fmt"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// item is a frame waiting to go out, stamped with its place in the overall
// order, so frames re-sent after a reconnect keep their original order.
type item struct {
	order uint64
	frame proto.Frame
}

// stream is the unacknowledged tail of one output stream.
type stream struct {
	nextSeq uint64 // seq of the next frame; the first is 1
	acked   uint64 // highest seq acknowledged
	frames  []item // unacknowledged, seq acked+1, acked+2, …
	bytes   int    // payload bytes in frames
	sentSeq uint64 // highest seq written on the current connection
	changed chan struct{}
}

// pendingExit is an Exit (or ExecExit) waiting for its acknowledgement.
type pendingExit struct {
	item
	key   string // runKey or execKey
	sent  bool   // written on the current connection since the last resend tick
	acked chan struct{}
}

func (s *Session) streamLocked(id uint32) *stream {
	st := s.streams[id]
	if st == nil {
		st = &stream{nextSeq: 1, changed: make(chan struct{})}
		s.streams[id] = st
	}
	return st
}

func (s *Session) nextOrderLocked() uint64 {
	s.order++
	return s.order
}

func (s *Session) wakeWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// WaitWindow blocks until stream has room for one more full frame without
// exceeding proto.Window unacknowledged bytes, or ctx ends.
func (s *Session) WaitWindow(ctx context.Context, id uint32) error {
	for {
		s.mu.Lock()
		st := s.streamLocked(id)
		if proto.Window-st.bytes >= proto.MaxPayload {
			s.mu.Unlock()
			return nil
		}
		ch := st.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Data queues output p of stream read at t, split into frames of at most
// proto.MaxPayload bytes. The Session takes ownership of p. It never blocks;
// callers keep the window by calling WaitWindow before reading.
func (s *Session) Data(id uint32, p []byte, t time.Time) {
	if len(p) == 0 {
		return
	}
	s.mu.Lock()
	st := s.streamLocked(id)
	for len(p) > 0 {
		n := min(len(p), proto.MaxPayload)
		f := proto.Frame{Type: proto.TypeData, Stream: id, Seq: st.nextSeq, Time: t, Payload: p[:n:n]}
		st.nextSeq++
		st.frames = append(st.frames, item{order: s.nextOrderLocked(), frame: f})
		st.bytes += n
		p = p[n:]
	}
	s.mu.Unlock()
	s.wakeWriter()
}

// Unacked returns the bytes of stream sent or queued but not acknowledged.
func (s *Session) Unacked(id uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streamLocked(id).bytes
}

// Credit tells the hub that n more bytes of stdin stream were consumed
// (written to the process, extracted, or dropped), so it may send n more.
// Credits of one stream are merged until the writer sends them; they go out
// ahead of queued output. It never blocks.
func (s *Session) Credit(stream uint32, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.credits[stream] += uint64(n)
	s.mu.Unlock()
	s.wakeWriter()
}

// Listening tells the hub which TCP ports the container's processes listen
// on (proto.Listening). Only the latest list matters: it replaces one not
// yet sent, and it is sent again after every reconnect. It never blocks.
func (s *Session) Listening(ports []int) {
	if ports == nil {
		ports = []int{}
	}
	s.mu.Lock()
	s.listening = append([]int(nil), ports...)
	s.listenSent = false
	s.mu.Unlock()
	s.wakeWriter()
}

// Started tells the hub that run runs as pid.
func (s *Session) Started(run uint32, pid int) {
	f, err := proto.Control(proto.TypeStarted, proto.Started{Run: run, Pid: pid})
	if err != nil {
		s.cfg.Logger.Error("encode started", "err", err)
		return
	}
	s.mu.Lock()
	s.running = run
	s.ctrl = append(s.ctrl, item{order: s.nextOrderLocked(), frame: f})
	s.mu.Unlock()
	s.wakeWriter()
}

// Exit reports the end of a run and blocks until the hub acknowledges it
// (re-sending it meanwhile) or ctx ends. Call it after the run's output has
// been passed to Data: the Exit goes out after those frames.
func (s *Session) Exit(ctx context.Context, e proto.Exit) error {
	f, err := proto.Control(proto.TypeExit, e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.running == e.Run {
		s.running = 0
	}
	s.mu.Unlock()
	return s.sendExit(ctx, runKey(e.Run), f)
}

// ExecStarted tells the hub that exec id runs as pid.
func (s *Session) ExecStarted(id string, pid int) {
	f, err := proto.Control(proto.TypeExecStarted, proto.ExecStarted{ID: id, Pid: pid})
	if err != nil {
		s.cfg.Logger.Error("encode exec started", "err", err)
		return
	}
	s.mu.Lock()
	s.ctrl = append(s.ctrl, item{order: s.nextOrderLocked(), frame: f})
	s.mu.Unlock()
	s.wakeWriter()
}

// Respond answers a hub's Request. A response lost with a dropped
// connection is not re-sent: the hub's request times out and is retried.
func (s *Session) Respond(r proto.Response) {
	f, err := proto.Control(proto.TypeResponse, r)
	if err != nil {
		s.cfg.Logger.Error("encode response", "err", err)
		return
	}
	s.mu.Lock()
	s.ctrl = append(s.ctrl, item{order: s.nextOrderLocked(), frame: f})
	s.mu.Unlock()
	s.wakeWriter()
}

// ExecExit reports the end of an exec like Exit does for a run: after the
// exec's output, re-sent until acknowledged or ctx ends.
func (s *Session) ExecExit(ctx context.Context, e proto.ExecExit) error {
	f, err := proto.Control(proto.TypeExecExit, e)
	if err != nil {
		return err
	}
	return s.sendExit(ctx, execKey(e.ID), f)
}

// sendExit queues an exit frame under key and waits for its acknowledgement.
func (s *Session) sendExit(ctx context.Context, key string, f proto.Frame) error {
	s.mu.Lock()
	pe := &pendingExit{item: item{order: s.nextOrderLocked(), frame: f}, key: key, acked: make(chan struct{})}
	s.exits = append(s.exits, pe)
	s.mu.Unlock()
	s.wakeWriter()
	select {
	case <-pe.acked:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exit keys: a run of the main process, or an exec.
func runKey(run uint32) string { return fmt.Sprintf("run/%d", run) }
func execKey(id string) string { return "exec/" + id }

// ack drops the frames of stream up to and including seq.
func (s *Session) ack(id uint32, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streamLocked(id)
	if seq >= st.nextSeq {
		s.cfg.Logger.Warn("hub acknowledged data never sent", "stream", id, "seq", seq, "last", st.nextSeq-1)
		seq = st.nextSeq - 1
	}
	if seq <= st.acked {
		return
	}
	k := 0
	for k < len(st.frames) && st.frames[k].frame.Seq <= seq {
		st.bytes -= len(st.frames[k].frame.Payload)
		k++
	}
	clear(st.frames[:k])
	st.frames = st.frames[k:]
	if len(st.frames) == 0 {
		st.frames = nil
	}
	st.acked = seq
	st.sentSeq = max(st.sentSeq, seq)
	close(st.changed)
	st.changed = make(chan struct{})
}

// exitAck settles the exit with key.
func (s *Session) exitAck(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pe := range s.exits {
		if pe.key == key {
			close(pe.acked)
			s.exits = append(s.exits[:i], s.exits[i+1:]...)
			return
		}
	}
}

// resetLocked prepares a new connection: everything unacknowledged is unsent.
func (s *Session) resetLocked() proto.Hello {
	h := proto.Hello{ContainerID: s.cfg.ContainerID, Running: s.running, StdinCredit: true}
	// A new connection starts with a full stdin window at the hub.
	clear(s.credits)
	for id, st := range s.streams {
		st.sentSeq = st.acked
		if st.acked > 0 {
			if h.Acked == nil {
				h.Acked = map[uint32]uint64{}
			}
			h.Acked[id] = st.acked
		}
	}
	for _, pe := range s.exits {
		pe.sent = false
	}
	s.listenSent = s.listening == nil // the hub hears the list once per connection
	return h
}

// resendExitsLocked makes Exits already written go out again.
func (s *Session) resendExitsLocked() bool {
	resent := false
	for _, pe := range s.exits {
		if pe.sent {
			pe.sent = false
			resent = true
		}
	}
	return resent
}

// nextLocked picks the unsent frame first in order and returns it with a
// function recording that it was written (called with mu held).
func (s *Session) nextLocked() (proto.Frame, func(), bool) {
	for id, n := range s.credits {
		// Credits are not ordered with output: they only open the hub's window.
		return proto.Frame{Type: proto.TypeStdinCredit, Stream: id, Seq: n}, func() {
			if s.credits[id] <= n {
				delete(s.credits, id)
			} else {
				s.credits[id] -= n
			}
		}, true
	}
	if !s.listenSent {
		// Not ordered with output either: the latest list replaces any other.
		f, err := proto.Control(proto.TypeListening, proto.Listening{Ports: s.listening})
		if err == nil {
			sent := s.listening
			return f, func() {
				if sameInts(s.listening, sent) {
					s.listenSent = true
				}
			}, true
		}
		s.cfg.Logger.Error("encode listening", "err", err)
		s.listenSent = true
	}
	var (
		best   *item
		commit func()
	)
	consider := func(it *item, c func()) {
		if best == nil || it.order < best.order {
			best, commit = it, c
		}
	}
	for _, st := range s.streams {
		if len(st.frames) == 0 {
			continue
		}
		i := int(st.sentSeq + 1 - st.frames[0].frame.Seq)
		if i < 0 {
			i = 0
		}
		if i < len(st.frames) {
			st, it := st, &st.frames[i]
			seq := it.frame.Seq
			consider(it, func() { st.sentSeq = max(st.sentSeq, seq) })
		}
	}
	if len(s.ctrl) > 0 {
		it := &s.ctrl[0]
		order := it.order
		consider(it, func() {
			if len(s.ctrl) > 0 && s.ctrl[0].order == order {
				s.ctrl[0] = item{}
				s.ctrl = s.ctrl[1:]
			}
		})
	}
	for _, pe := range s.exits {
		if !pe.sent {
			pe := pe
			consider(&pe.item, func() { pe.sent = true })
		}
	}
	if best == nil {
		return proto.Frame{}, nil, false
	}
	return best.frame, commit, true
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
