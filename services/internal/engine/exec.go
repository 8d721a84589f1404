package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// maxFinishedExecs bounds the finished exec records a container keeps.
const maxFinishedExecs = 50

// execIDPrefix is how much of an exec ID is its container's ID prefix, so
// an exec is found from its ID alone without another index.
const execIDPrefix = 24

// ExecConfig is what POST /containers/{id}/exec asks for.
type ExecConfig struct {
	Cmd                                     []string
	Env                                     []string
	WorkingDir, User                        string
	Privileged, Tty                         bool
	AttachStdin, AttachStdout, AttachStderr bool
	DetachKeys                              string
	// Probe marks a health check or archive run (see Exec.Probe).
	Probe bool
	// AnyState: see Exec.AnyState.
	AnyState bool
}

// ExecCreate registers an exec in a running container.
func (e *Engine) ExecCreate(ctx context.Context, ns, ref string, cfg ExecConfig) (string, error) {
	if len(cfg.Cmd) == 0 {
		return "", Errorf(KindInvalid, "No exec command specified")
	}
	if err := checkNoNUL("exec configuration", append(append([]string{cfg.WorkingDir, cfg.User}, cfg.Cmd...), cfg.Env...)...); err != nil {
		return "", err
	}
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return "", err
	}
	if err := checkProcessSize("exec", proto.Process{Args: cfg.Cmd, Env: mergeEnv(containerEnv(c), cfg.Env), Dir: cfg.WorkingDir, User: cfg.User}); err != nil {
		return "", err
	}
	id := c.ID[:execIDPrefix] + randomHex(20)
	_, err = e.cfg.Store.UpdateContainer(ctx, ns, c.ID, func(c *Container) error {
		if c.State.Status != StatusRunning && !(cfg.AnyState && c.Instance == "up") {
			if c.State.Status == StatusPaused {
				return Errorf(KindConflict, "Container %s is paused, unpause the container before exec", c.ID)
			}
			return Errorf(KindConflict, "container %s is not running", c.ID)
		}
		if c.NextStream < proto.FirstExecStream {
			c.NextStream = proto.FirstExecStream
		}
		if c.Execs == nil {
			c.Execs = map[string]*Exec{}
		}
		c.Execs[id] = &Exec{
			ID: id, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User,
			Privileged: cfg.Privileged, Tty: cfg.Tty, AttachStdin: cfg.AttachStdin,
			AttachStdout: cfg.AttachStdout, AttachStderr: cfg.AttachStderr, DetachKeys: cfg.DetachKeys,
			Probe: cfg.Probe, AnyState: cfg.AnyState,
			Stdout: c.NextStream, Stderr: c.NextStream + 1, Stdin: c.NextStream + 2,
			Created: time.Now().UTC(),
		}
		c.NextStream += 3
		pruneExecs(c)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("exec create in %s: %w", ref, err)
	}
	if !cfg.Probe {
		e.publish(c, "exec_create: "+strings.Join(cfg.Cmd, " "), map[string]string{"execID": id})
	}
	return id, nil
}

// pruneExecs drops the oldest finished execs beyond the bound.
func pruneExecs(c *Container) {
	var done []*Exec
	for _, x := range c.Execs {
		if x.ExitCode != nil {
			done = append(done, x)
		}
	}
	if len(done) <= maxFinishedExecs {
		return
	}
	sort.Slice(done, func(i, j int) bool { return done[i].Created.Before(done[j].Created) })
	for _, x := range done[:len(done)-maxFinishedExecs] {
		delete(c.Execs, x.ID)
	}
}

// Exec finds an exec and its container by exec ID.
func (e *Engine) Exec(ctx context.Context, ns, execID string) (*Container, *Exec, error) {
	notFound := &Error{Kind: KindNotFound, Message: "No such exec instance: " + execID}
	if len(execID) < execIDPrefix {
		return nil, nil, notFound
	}
	c, err := e.cfg.Store.GetContainer(ctx, ns, execID[:execIDPrefix])
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAmbiguous) {
			return nil, nil, notFound
		}
		return nil, nil, fmt.Errorf("find exec %s: %w", execID, err)
	}
	x, ok := c.Execs[execID]
	if !ok {
		return nil, nil, notFound
	}
	return c, x, nil
}

// ExecStartOptions are the client side of POST /exec/{id}/start.
type ExecStartOptions struct {
	Detach     bool
	Rows, Cols uint16
	// Stdin is the client's input (nil: none); EOF closes the exec's stdin.
	Stdin io.Reader
}

// ExecStart runs an exec. Unless detached it emits the exec's output (as
// streams 1 and 2) until the exec ends; its exit code is stored before the
// output ends, so a client inspecting right after sees it.
func (e *Engine) ExecStart(ctx context.Context, ns, execID string, o ExecStartOptions, emit func(LogEntry) error) error {
	c, x, err := e.Exec(ctx, ns, execID)
	if err != nil {
		return err
	}
	var cursor uint64
	c, err = e.cfg.Store.UpdateContainer(ctx, ns, c.ID, func(c *Container) error {
		x := c.Execs[execID]
		if x == nil {
			return Errorf(KindNotFound, "No such exec instance: %s", execID)
		}
		if x.Started {
			return Errorf(KindConflict, "Exec command %s is already running", execID)
		}
		if c.State.Status != StatusRunning && !(x.AnyState && c.Instance == "up") {
			return Errorf(KindConflict, "container %s is not running", c.ID)
		}
		x.Started, x.Running = true, true
		cursor = c.LogSeq
		return nil
	})
	if err != nil {
		return fmt.Errorf("exec start %s: %w", execID, err)
	}
	x = c.Execs[execID]
	if !x.Probe {
		e.publish(c, "exec_start: "+strings.Join(x.Cmd, " "), map[string]string{"execID": execID})
	}
	sess, err := e.streamSession(ctx, c)
	if err != nil {
		e.finishExec(ns, c.ID, execID, 126, err.Error())
		return fmt.Errorf("exec start %s: %w", execID, err)
	}
	dir := x.WorkingDir
	if dir == "" {
		dir = c.Config.WorkingDir
	}
	user := x.User
	if user == "" {
		user = c.Config.User
	}
	pid, err := sess.Exec(ctx, proto.ExecStart{
		ID: execID, Stdout: x.Stdout, Stderr: x.Stderr, Stdin: x.Stdin,
		Rows: o.Rows, Cols: o.Cols,
		Process: proto.Process{Args: x.Cmd, Env: mergeEnv(containerEnv(c), x.Env), Dir: dir, User: user, Tty: x.Tty, OpenStdin: x.AttachStdin, GroupAdd: groupAdd(c)},
	})
	if err != nil {
		if KindOf(err) != KindInvalid {
			e.finishExec(ns, c.ID, execID, 126, err.Error())
			return fmt.Errorf("exec start %s: %w", execID, err)
		}
		// The agent could not start it; the exit (126/127) is stored.
		if !o.Detach {
			_ = emit(LogEntry{Stream: Stdout, Time: time.Now(), Data: []byte("OCI runtime exec failed: exec failed: unable to start container process: " + err.Error() + ": unknown\r\n")})
		}
		return nil
	}
	if pid != 0 {
		_, _ = e.cfg.Store.UpdateContainer(context.WithoutCancel(ctx), ns, c.ID, func(c *Container) error {
			if x := c.Execs[execID]; x != nil && x.ExitCode == nil {
				x.Pid = pid
			}
			return nil
		})
	}
	if o.Detach {
		return nil
	}
	if o.Stdin != nil && x.AttachStdin {
		in, err := attachInput(o.Stdin, x.DetachKeys, x.Tty)
		if err != nil {
			return err
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go e.pumpStdin(ctx, sess, x.Stdin, in, !x.Tty, cancel)
	}
	done := func(c *Container) bool {
		x := c.Execs[execID]
		return x == nil || x.ExitCode != nil
	}
	err = e.follow(ctx, ns, c.ID, cursor, nil, done, func(le LogEntry) error {
		switch uint32(le.Stream) {
		case x.Stdout:
			le.Stream = Stdout
		case x.Stderr:
			le.Stream = Stderr
		default:
			return nil
		}
		return emit(le)
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // detached: the exec goes on
	}
	return err
}

// pumpStdin forwards a client's input to a stdin stream; at EOF (or a
// failed client read) it closes the stream if closeAtEOF. If the input is
// the escape proxy that read the detach keys, onDetach ends the attachment.
func (e *Engine) pumpStdin(ctx context.Context, sess StreamSession, stream uint32, r io.Reader, closeAtEOF bool, onDetach func()) {
	buf := make([]byte, proto.MaxPayload)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if serr := sess.Stdin(ctx, stream, append([]byte(nil), buf[:n]...)); serr != nil {
				e.log.Debug("stdin", "stream", stream, "err", serr)
				return
			}
		}
		if err != nil {
			if isDetach(err) {
				if onDetach != nil {
					onDetach()
				}
				return // the process keeps its stdin open, as docker
			}
			if !closeAtEOF {
				return
			}
			if cerr := sess.CloseStdin(context.WithoutCancel(ctx), stream); cerr != nil {
				e.log.Debug("close stdin", "stream", stream, "err", cerr)
			}
			return
		}
	}
}

// finishExec records an exec's end that the agent did not report.
func (e *Engine) finishExec(ns, id, execID string, code int, msg string) {
	_, err := e.cfg.Store.UpdateContainer(context.WithoutCancel(e.ctx), ns, id, func(c *Container) error {
		if x := c.Execs[execID]; x != nil && x.ExitCode == nil {
			x.ExitCode, x.Running, x.Pid, x.Error = &code, false, 0, msg
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.log.Error("record exec end", "exec", execID, "err", err)
	}
	e.notify.notify(id)
}

// ExecResize sets an exec's terminal size.
func (e *Engine) ExecResize(ctx context.Context, ns, execID string, rows, cols uint16) error {
	c, x, err := e.Exec(ctx, ns, execID)
	if err != nil {
		return err
	}
	if !x.Running {
		return Errorf(KindConflict, "exec %s is not running", execID)
	}
	return e.resize(ctx, c, execID, rows, cols)
}

// Resize sets the main process's terminal size.
func (e *Engine) Resize(ctx context.Context, ns, ref string, rows, cols uint16) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if !running(c) {
		return Errorf(KindConflict, "Container %s is not running", c.ID)
	}
	return e.resize(ctx, c, "", rows, cols)
}

func (e *Engine) resize(ctx context.Context, c *Container, execID string, rows, cols uint16) error {
	sess, err := e.streamSession(ctx, c)
	if err != nil {
		return fmt.Errorf("resize %s: %w", c.ID, err)
	}
	return sess.Resize(ctx, proto.Resize{Exec: execID, Rows: rows, Cols: cols})
}

// streamSession returns the container's connected agent session that
// carries execs and stdin, waiting briefly for a reconnecting agent.
func (e *Engine) streamSession(ctx context.Context, c *Container) (StreamSession, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sess, err := e.cfg.Agents.Session(sctx, agentID(c))
	if err != nil {
		return nil, fmt.Errorf("agent not connected: %w", err)
	}
	ss, ok := sess.(StreamSession)
	if !ok {
		return nil, Errorf(KindNotImplemented, "this control plane's agent hub carries no exec or stdin streams")
	}
	return ss, nil
}
