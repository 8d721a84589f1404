package engine

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// AgentBackend is the engine's side of the agent hub: it authorizes agents
// and stores what they report. The hub acknowledges only after these return.
type AgentBackend struct{ e *Engine }

// AgentBackend returns the hub's view of the engine.
func (e *Engine) AgentBackend() *AgentBackend { return &AgentBackend{e: e} }

func (b *AgentBackend) container(ctx context.Context, aid string) (*Container, error) {
	ns, id, ok := splitAgentID(aid)
	if !ok {
		return nil, Errorf(KindUnauthorized, "unknown agent")
	}
	c, err := b.e.cfg.Store.GetContainer(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	if c.ID != id {
		return nil, ErrNotFound // a name or prefix is no agent identity
	}
	return c, nil
}

// AuthorizeAgent checks the secret of the agent of container aid. An
// agent of an instance the engine has ended gets ErrInstanceEnded, as
// does any agent of a container that does not exist (removed), or of a
// start of this process whose claim lost. One calling back while its
// start's claim is being stored waits for the claim (bounded by ctx).
func (b *AgentBackend) AuthorizeAgent(ctx context.Context, aid, secret string) error {
	sh := hashSecret(secret)
	// An instance boots while its start's claim is stored: its agent may
	// call back first.
	if err := b.e.awaitClaim(ctx, sh); err != nil {
		return err
	}
	c, err := b.container(ctx, aid)
	if errors.Is(err, ErrNotFound) {
		// Removed, by this control plane or another, maybe before its
		// agent called back (docker run --rm of a start given up), or
		// never made: no record can ever authorize it, and no instance of
		// it is wanted, so it ends its instance rather than dial on. (The
		// store reads a container's absence from Firestore itself, or
		// from a listener that saw its deletion: never too early.)
		return ErrInstanceEnded
	}
	if err != nil {
		return Errorf(KindUnauthorized, "unknown container")
	}
	if c.SecretHash == "" || subtle.ConstantTimeCompare([]byte(c.SecretHash), []byte(sh)) != 1 {
		return Errorf(KindUnauthorized, "wrong agent secret")
	}
	if c.Instance == "gone" {
		// Its instance was given up (a new one gets a new secret): an
		// agent calling back late ends the instance it keeps busy.
		return ErrInstanceEnded
	}
	if c.StartedBy != "" && c.StartedBy != b.e.process && time.Now().Before(c.StartClaim) {
		// Another control plane is starting it and waits for this agent;
		// refused, the agent dials again and may reach that one.
		return Errorf(KindUnavailable, "container %s is being started by another control plane", c.ID)
	}
	return nil
}

// AgentAcked returns the last stored data seq per agent stream.
func (b *AgentBackend) AgentAcked(ctx context.Context, aid string) (map[uint32]uint64, error) {
	c, err := b.container(ctx, aid)
	if err != nil {
		return nil, err
	}
	return c.Acked, nil
}

// StoreOutput appends output to the container's log.
func (b *AgentBackend) StoreOutput(ctx context.Context, aid string, entries []LogEntry, acked map[uint32]uint64) error {
	ns, id, ok := splitAgentID(aid)
	if !ok {
		return fmt.Errorf("bad agent id %q", aid)
	}
	b.e.outputStoring(id)
	_, err := b.e.cfg.Store.AppendLogs(ctx, ns, id, entries, acked)
	b.e.outputLanded(id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil // removed: nothing to keep
		}
		return fmt.Errorf("store output of %s: %w", id, err)
	}
	b.e.notify.notify(id)
	return nil
}

// StoreExit records the end of a run; with AutoRemove it removes the container.
func (b *AgentBackend) StoreExit(ctx context.Context, aid string, ex proto.Exit) error {
	return b.storeExit(ctx, aid, nil, nil, ex)
}

// outputLinger is how long the hub waits behind output for an exit, on a
// store other control planes share (agenthub.OutputExitStorer): the exit
// of a process that prints and ends comes a moment after its output, and
// the two are one round trip and one write instead of two. It delays the
// store of output (docker logs -f) by as much.
const outputLinger = 3 * time.Millisecond

// OutputLinger is outputLinger on a shared store; on the embedded store a
// write costs less than the wait.
func (b *AgentBackend) OutputLinger() time.Duration {
	if b.e.storeShared() {
		return outputLinger
	}
	return 0
}

// StoreOutputExit stores a run's last output and its exit in one write
// (agenthub.OutputExitStorer): StoreOutput and StoreExit in one.
func (b *AgentBackend) StoreOutputExit(ctx context.Context, aid string, entries []LogEntry, acked map[uint32]uint64, ex proto.Exit) error {
	return b.storeExit(ctx, aid, entries, acked, ex)
}

// storeExit stores exit ex with the run's last output entries and acks
// (none: the exit alone), and does what follows. On a store that removes
// in the same write (FinalRemover), an --rm container whose last run this
// is goes with it: its removal does not wait for the exit's write, and
// its addresses are released during that write.
func (b *AgentBackend) storeExit(ctx context.Context, aid string, entries []LogEntry, acked map[uint32]uint64, ex proto.Exit) error {
	ns, id, ok := splitAgentID(aid)
	if !ok {
		return fmt.Errorf("bad agent id %q", aid)
	}
	b.e.exitReceived(id, ex.Run)
	update, stored := exitUpdate(ex)
	var c *Container
	var err error
	removed, releasing := false, false
	switch fr, ok := b.e.cfg.Store.(FinalRemover); {
	case ok:
		releasing = b.e.releaseEnding(ns, id, ex)
		_, c, removed, err = fr.AppendLogsRemove(ctx, ns, id, entries, acked, update, func(c *Container) bool {
			return *stored && autoRemoving(c) && c.State.Status != StatusRestarting
		})
	case len(entries) > 0 || len(acked) > 0:
		_, c, err = b.e.cfg.Store.AppendLogsUpdate(ctx, ns, id, entries, acked, update)
	default:
		c, err = b.e.cfg.Store.UpdateContainer(ctx, ns, id, update)
	}
	if errors.Is(err, ErrNotFound) {
		return nil // removed: nothing to keep
	}
	if err != nil {
		return fmt.Errorf("store exit of %s: %w", id, err)
	}
	b.e.exitLanded(id, ex.Run)
	if removed {
		b.exitRemoved(c, ex, releasing)
		return nil
	}
	b.exitStored(c, ex, *stored)
	return nil
}

// releaseEnding starts the release of the addresses of container id,
// whose run ex.Run is ending, when the state this process knows of it
// says it is an --rm container in its last run (it is removed with its
// exit, and the removal waits for the release): it reports whether it
// did. Its "start" and "die" events go out first, as docker's precede
// the network's "disconnect".
func (e *Engine) releaseEnding(ns, id string, ex proto.Exit) bool {
	kc, ok := e.cfg.Store.(KnownContainers)
	if !ok || e.cfg.Networks == nil {
		return false
	}
	c, ok := kc.KnownContainer(ns, id)
	if !ok || !removedOnExit(c) || c.Run != ex.Run || c.ExitedRun >= ex.Run {
		return false
	}
	if ex.Error == "" { // it ran
		e.publishStart(c, ex.Run)
	}
	e.publishDie(c, ex.Run, ex.Code)
	e.netDownAsync(c)
	return true
}

// publishDie publishes the "die" of run of container c, once.
func (e *Engine) publishDie(c *Container, run uint32, code int) {
	e.mu.Lock()
	if e.diedRun[c.ID] >= run {
		e.mu.Unlock()
		return
	}
	e.diedRun[c.ID] = run
	e.mu.Unlock()
	e.publish(c, "die", map[string]string{"exitCode": strconv.Itoa(code)})
}

// exitRemoved does what follows the store of exit ex of container c
// together with its removal (FinalRemover): exitStored's part, then
// remove's after the deletion. releasing: its addresses are being
// released already (releaseEnding).
func (b *AgentBackend) exitRemoved(c *Container, ex proto.Exit, releasing bool) {
	e := b.e
	if ex.Error == "" { // it ran: its start comes first
		e.publishStart(c, ex.Run)
	}
	if !releasing {
		e.netDownAsync(c)
	}
	r := e.beginRemoval(c, result(c))
	e.releasePorts(c, ex.Run)
	e.publishDie(c, ex.Run, ex.Code)
	e.notify.notify(c.ID) // its waiters now wait for the removal's end
	e.goBackground(func(ctx context.Context) {
		defer r.over()
		e.shutdownAgent(ctx, c)
		e.endRemoval(ctx, c, r, true)
		// Not before: the start of this run, finishing, finds its exit
		// stored (exitFollows) and records nothing.
		e.forgetRuns(c.ID)
	})
}

// exitUpdate is the change that records exit ex; *stored tells, after
// the update, whether it recorded it (it was not stored before).
func exitUpdate(ex proto.Exit) (func(*Container) error, *bool) {
	stored := new(bool)
	return func(c *Container) error {
		*stored = false
		if ex.Run <= c.ExitedRun || ex.Run > c.Run {
			return nil // already stored, or not a run we started
		}
		*stored = true
		c.ExitedRun = ex.Run
		if ex.Run == c.Run {
			c.StartedBy, c.StartClaim = "", time.Time{} // its start is over
			c.Ports = nil
			c.State.Status = StatusExited
			c.State.ExitCode = ex.Code
			c.State.Error = ex.Error
			c.State.Pid = 0
			c.State.FinishedAt = time.Now().UTC()
			if shouldRestart(c) {
				c.State.Status = StatusRestarting
				c.RestartCount++
			}
		}
		return nil
	}, stored
}

// exitStored does what follows the store of exit ex (stored: it was not
// stored before) of container c, as updated.
func (b *AgentBackend) exitStored(c *Container, ex proto.Exit, stored bool) {
	id := c.ID
	if stored && ex.Error == "" { // it ran: its start comes first (and Start need not record it running)
		b.e.publishStart(c, ex.Run)
	}
	if stored && ex.Run == c.Run {
		if autoRemoving(c) {
			// The removal that comes next goes on while its addresses
			// are released; waiters for the exit, and the removal's
			// end, wait for the release.
			b.e.netDownAsync(c)
		} else {
			b.e.netDown(c) // before the exit is visible: docker network rm right after works
		}
	}
	b.e.notify.notify(id)
	if stored {
		b.e.releasePorts(c, ex.Run)
		b.e.publishDie(c, ex.Run, ex.Code)
	}
	if stored && c.State.Status == StatusRestarting {
		b.e.scheduleRestart(c)
	}
	if stored {
		b.e.autoRemove(c)
	}
}

// removedOnExit reports whether c goes when its run ends: --rm, and not
// kept by a restart's stop (KeepOnExit).
func removedOnExit(c *Container) bool {
	return c.HostConfig != nil && c.HostConfig.AutoRemove && !c.KeepOnExit
}

// autoRemoving reports whether c is removed now that its last run ended
// (--rm).
func autoRemoving(c *Container) bool {
	return removedOnExit(c) && c.ExitedRun == c.Run
}

// autoRemove removes c (--rm) once its last run has ended, as docker does
// also when the start failed.
func (e *Engine) autoRemove(c *Container) {
	if !autoRemoving(c) {
		return
	}
	e.goBackground(func(ctx context.Context) {
		// attached clients get all the output before it goes with the container
		e.awaitFollowers(ctx, c.ID, 30*time.Second)
		if err := e.remove(ctx, c, true); err != nil {
			e.log.Error("auto-remove", "container", c.ID, "err", err)
		}
	})
}

// AgentListening hands the ports a container's processes listen on to the
// network plane.
func (b *AgentBackend) AgentListening(ctx context.Context, aid string, ports []int) {
	ns, id, ok := splitAgentID(aid)
	if !ok || b.e.cfg.Networks == nil {
		return
	}
	b.e.cfg.Networks.Listening(ctx, ns, id, ports)
}

// AgentGone notes that an agent's connection ended; it may reconnect.
func (b *AgentBackend) AgentGone(aid string) {
	b.e.log.Debug("agent disconnected", "agent", aid)
}

// StoreExecExit records the end of an exec.
func (b *AgentBackend) StoreExecExit(ctx context.Context, aid string, ex proto.ExecExit) error {
	ns, id, ok := splitAgentID(aid)
	if !ok {
		return fmt.Errorf("bad agent id %q", aid)
	}
	c, err := b.e.cfg.Store.UpdateContainer(ctx, ns, id, func(c *Container) error {
		x := c.Execs[ex.ID]
		if x == nil || x.ExitCode != nil {
			return nil
		}
		code := ex.Code
		if ex.Error != "" {
			code = 126 // docker reports every exec that could not start as 126
		}
		x.ExitCode, x.Running, x.Pid, x.Error = &code, false, 0, ex.Error
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store exec exit of %s: %w", ex.ID, err)
	}
	b.e.notify.notify(id)
	if x := c.Execs[ex.ID]; x != nil && x.ExitCode != nil && !x.Probe {
		b.e.publish(c, "exec_die", map[string]string{"execID": ex.ID, "exitCode": strconv.Itoa(*x.ExitCode)})
	}
	return nil
}
