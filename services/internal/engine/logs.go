package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// LogOptions select output for docker logs.
type LogOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // < 0: all lines
	// Anchored makes Tail count back from the entry with sequence number
	// Anchor instead of the last one, so that a stream asked for again
	// (the forwarder resuming it) selects the same lines.
	Anchored bool
	Anchor   uint64
}

// readBatch is how many entries one store read returns.
const readBatch = 256

// Logs emits the container's output line by line (docker's log lines, each
// with the time the agent read it). With Follow it keeps emitting until the
// container stops running and its output is drained.
func (e *Engine) Logs(ctx context.Context, ns, ref string, o LogOptions, emit func(LogEntry) error) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if err := logsReadable(c); err != nil {
		return err
	}
	want := func(le LogEntry) bool {
		if !wantStream(le.Stream, o.Stdout, o.Stderr) {
			return false
		}
		if !o.Since.IsZero() && le.Time.Before(o.Since) {
			return false
		}
		return o.Until.IsZero() || !le.Time.After(o.Until)
	}
	if running(c) && !o.Follow {
		e.flushOutput(ctx, c)
	}
	if neverCalledBack(c) && e.cfg.BootLogs != nil {
		if err := e.bootLogs(ctx, c, want, emit); err != nil {
			return err
		}
	}
	var cursor uint64
	if o.Tail >= 0 {
		all, err := e.cfg.Store.ReadLogs(ctx, ns, c.ID, 0, 0)
		if err != nil {
			return fmt.Errorf("logs %s: %w", c.ID, err)
		}
		var lines []LogEntry
		if o.Anchored {
			cursor = o.Anchor
		}
		for _, le := range all {
			if o.Anchored && le.Seq > o.Anchor {
				break
			}
			cursor = le.Seq
			if want(le) {
				lines = append(lines, splitLines(le)...)
			}
		}
		if len(lines) > o.Tail {
			lines = lines[len(lines)-o.Tail:]
		}
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		if !o.Follow {
			return nil
		}
	}
	done := func(c *Container) bool { return !o.Follow || !running(c) && c.Run == c.ExitedRun }
	return e.follow(ctx, ns, c.ID, cursor, nil, done, func(le LogEntry) error {
		if !o.Until.IsZero() && le.Time.After(o.Until) {
			return errStop
		}
		if !want(le) {
			return nil
		}
		for _, l := range splitLines(le) {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// attachStdin waits for run to be running, then feeds it the client's input.
func (e *Engine) attachStdin(ctx context.Context, c *Container, run uint32, r io.Reader, onDetach func()) {
	if !e.awaitRunning(ctx, c, run) {
		return
	}
	sess, err := e.streamSession(ctx, c)
	if err != nil {
		e.log.Warn("attach stdin", "container", c.ID, "err", err)
		return
	}
	// As docker: the end of an attachment closes stdin only without a TTY.
	e.pumpStdin(ctx, sess, proto.StreamStdin, r, c.Config.StdinOnce && !c.Config.Tty, onDetach)
}

// awaitRunning waits until run of c is running; false if it exited first,
// the container is gone or ctx ended.
func (e *Engine) awaitRunning(ctx context.Context, c *Container, run uint32) bool {
	defer e.watch(c.Namespace, c.ID)()
	for {
		ch := e.notify.changed(c.ID)
		cur, err := e.cfg.Store.GetContainer(ctx, c.Namespace, c.ID)
		if err != nil || cur.ExitedRun >= run {
			return false
		}
		if cur.Run >= run && cur.State.Status == StatusRunning {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// neverCalledBack reports whether c's last run failed before its agent
// stored anything: the run ended with an error and no output at all.
func neverCalledBack(c *Container) bool {
	return c.LogSeq == 0 && c.ExitedRun > 0 && c.ExitedRun == c.Run && c.State.Error != ""
}

// bootLogs emits what c's instances wrote to the platform's log (the
// agent's lines about its failed boot); a failed read is logged and the
// logs go on without them.
func (e *Engine) bootLogs(ctx context.Context, c *Container, want func(LogEntry) bool, emit func(LogEntry) error) error {
	entries, err := e.cfg.BootLogs.BootLogs(ctx, c)
	if err != nil {
		e.log.Warn("read the platform's log of a failed boot", "container", c.ID, "err", err)
	}
	for _, le := range entries {
		if want(le) {
			if err := emit(le); err != nil {
				return err
			}
		}
	}
	return nil
}

// errStop ends a follow early without an error.
var errStop = fmt.Errorf("stop following")

// AttachOptions select output for attach.
type AttachOptions struct {
	Stdout, Stderr bool
	Logs           bool // replay stored output first
	// Stdin is the client's input for a container with OpenStdin (nil:
	// not attached). It flows once the run has started; its EOF closes the
	// container's stdin if the container has StdinOnce (docker run -i) and
	// no TTY.
	Stdin io.Reader
	// DetachKeys end the attachment when typed on Stdin (docker's syntax;
	// "" is ctrl-p,ctrl-q); the container keeps running.
	DetachKeys string
}

// Attach emits the container's output as it is produced, until the current
// run ends; for a container that is not running, until the next run (the
// one about to be started) ends. Chunks are emitted as the agent read them.
func (e *Engine) Attach(ctx context.Context, ns, ref string, o AttachOptions, emit func(LogEntry) error) error {
	p, err := e.AttachPoint(ctx, ns, ref)
	if err != nil {
		return err
	}
	return e.AttachAt(ctx, p, o, emit)
}

// AttachPoint is a container read for an attach, with its change
// notification registered before that read: the API reads the container
// once (to answer the request, tty or not) and the attach follows on from
// that read rather than reading it again.
type AttachPoint struct {
	ns     string
	c      *Container
	primed <-chan struct{}
}

// Container is the container as read for the attach.
func (p *AttachPoint) Container() *Container { return p.c }

// AttachPoint reads container ref of namespace ns for an attach (AttachAt).
func (e *Engine) AttachPoint(ctx context.Context, ns, ref string) (*AttachPoint, error) {
	c, primed, err := e.containerPrimed(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	return &AttachPoint{ns: ns, c: c, primed: primed}, nil
}

// AttachAt is Attach from a container already read with AttachPoint: any
// change since that read closes its notification, so the attach reads the
// container again only then.
func (e *Engine) AttachAt(ctx context.Context, p *AttachPoint, o AttachOptions, emit func(LogEntry) error) error {
	ns, c, primed := p.ns, p.c, p.primed
	var err error
	e.publish(c, "attach", nil) // as docker, for every attachment
	if running(c) && len(Binds(c)) > 0 {
		// A barrier: what the host changed in the binds before the attach
		// is in the container before its input arrives.
		var ack struct{}
		if err := e.ask(ctx, c, proto.RequestBinds, &ack); err != nil {
			e.log.Warn("attach: host bind barrier", "container", c.ID, "err", err)
		}
	}
	cursor := c.LogSeq
	if o.Logs {
		cursor = 0
	}
	endRun := c.Run
	if !running(c) && c.Run == c.ExitedRun {
		endRun = c.Run + 1
	}
	done := func(c *Container) bool { return c.ExitedRun >= endRun }
	if o.Stdin != nil && c.Config.OpenStdin {
		in, err := attachInput(o.Stdin, o.DetachKeys, c.Config.Tty)
		if err != nil {
			return err
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go e.attachStdin(ctx, c, endRun, in, cancel)
	}
	var first *primedRead
	if primed != nil {
		first = &primedRead{c: c, ch: primed}
	}
	err = e.follow(ctx, ns, c.ID, cursor, first, done, func(le LogEntry) error {
		if !wantStream(le.Stream, o.Stdout, o.Stderr) {
			return nil
		}
		return emit(le)
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // detached: the container goes on
	}
	return err
}

// flushOutputWait bounds the wait for a running container's agent to send
// what its process wrote before a docker logs.
const flushOutputWait = 2 * time.Second

// flushOutput has c's agent send the output its process wrote so far, and
// returns once it is stored (the agent answers after those frames, and the
// hub stores frames in order): docker logs, and attach without a stream,
// show what the process wrote before the request, as from the Docker
// engine's log file. An agent that cannot (gone, older) is not waited for.
func (e *Engine) flushOutput(ctx context.Context, c *Container) {
	ctx, cancel := context.WithTimeout(ctx, flushOutputWait)
	defer cancel()
	var ack struct{}
	if err := e.ask(ctx, c, proto.RequestFlush, &ack); err != nil {
		e.log.Debug("logs: output flush", "container", c.ID, "err", err)
	}
}

// primedRead is a container read with its notification channel
// registered before it (containerPrimed).
type primedRead struct {
	c  *Container
	ch <-chan struct{}
}

// follow emits entries after cursor until done holds and everything stored
// before that moment is emitted, or the container is removed. first, if
// not nil, is its first look at the container (else it reads it).
func (e *Engine) follow(ctx context.Context, ns, id string, cursor uint64, first *primedRead, done func(*Container) bool, emit func(LogEntry) error) error {
	e.addFollower(id, 1)
	defer e.addFollower(id, -1)
	defer e.watch(ns, id)()
	for {
		var ch <-chan struct{}
		var c *Container
		var err error
		if first != nil {
			ch, c, first = first.ch, first.c, nil
		} else {
			ch = e.notify.changed(id)
			c, err = e.cfg.Store.GetContainer(ctx, ns, id)
		}
		finished := err != nil || done(c) // removed, or done: drain then stop
		// Nothing stored past the cursor (a change since closes ch): no
		// read of the logs.
		if c == nil || c.LogSeq > cursor || finished {
			for {
				batch, err := e.cfg.Store.ReadLogs(ctx, ns, id, cursor, readBatch)
				if err != nil {
					return nil // removed meanwhile
				}
				for _, le := range batch {
					cursor = le.Seq
					if err := emit(le); err != nil {
						if err == errStop {
							return nil
						}
						return err
					}
				}
				if len(batch) < readBatch {
					break
				}
			}
		}
		if finished {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wantStream selects the main process's streams; exec output, stored under
// other stream numbers, is never part of logs or attach.
func wantStream(stream int, stdout, stderr bool) bool {
	return stream == Stdout && stdout || stream == Stderr && stderr
}

// splitLines cuts an output chunk into lines, each keeping its newline.
func splitLines(le LogEntry) []LogEntry {
	if bytes.IndexByte(le.Data, '\n') == len(le.Data)-1 {
		return []LogEntry{le}
	}
	var out []LogEntry
	data := le.Data
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		n := len(data)
		if i >= 0 {
			n = i + 1
		}
		l := le
		l.Data = data[:n]
		out = append(out, l)
		data = data[n:]
	}
	return out
}

// addFollower counts the streams reading a container's output, so that an
// automatic removal waits until they have sent everything.
func (e *Engine) addFollower(id string, d int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.followers[id] += d
	if e.followers[id] <= 0 {
		delete(e.followers, id)
		if ch := e.drained[id]; ch != nil {
			close(ch)
			delete(e.drained, id)
		}
	}
}

// awaitFollowers waits (at most d) until no stream reads id's output.
func (e *Engine) awaitFollowers(ctx context.Context, id string, d time.Duration) {
	e.mu.Lock()
	if e.followers[id] == 0 {
		e.mu.Unlock()
		return
	}
	ch := e.drained[id]
	if ch == nil {
		ch = make(chan struct{})
		e.drained[id] = ch
	}
	e.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		e.log.Warn("auto-remove: output readers still busy; removing anyway", "container", id)
	case <-ctx.Done():
	}
}
