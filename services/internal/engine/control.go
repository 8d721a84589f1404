package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ParseSignal accepts docker's forms: "SIGTERM", "TERM", "term", "15".
func ParseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, Errorf(KindInvalid, "Invalid signal: %s", s)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, Errorf(KindInvalid, "Invalid signal: %s", s)
}

// Kill delivers a signal (default SIGKILL) to the running container.
func (e *Engine) Kill(ctx context.Context, ns, ref, signal string) error {
	if signal == "" {
		signal = "SIGKILL"
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if !running(c) {
		return Errorf(KindConflict, "Cannot kill container: %s: Container %s is not running", ref, c.ID)
	}
	if err := e.markStopped(ctx, c, false); err != nil {
		return err
	}
	// Published before the signal goes out, so it precedes the "die" it causes.
	e.publish(c, "kill", map[string]string{"signal": strconv.Itoa(sig)})
	if err := e.signal(ctx, c, sig); err != nil {
		return err
	}
	if err := e.thawForSignal(ctx, c, sig); err != nil {
		return err
	}
	if sig == int(unix.SIGKILL) {
		// As docker: a kill with SIGKILL answers once the container has
		// exited, so an inspect or rm right after sees it stopped.
		if !e.waitRunExit(ctx, ns, c.ID, c.Run, killWait) && ctx.Err() == nil {
			e.failRun(ns, c.ID, c.Run, "container did not exit after SIGKILL")
		}
	}
	return nil
}

// killWait bounds how long a SIGKILL waits for the exit to be stored.
const killWait = 30 * time.Second

// markStopped records a user's stop, which the restart policy respects;
// keep: a restart's, which keeps an --rm container (KeepOnExit).
func (e *Engine) markStopped(ctx context.Context, c *Container, keep bool) error {
	_, err := e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		c.ManuallyStopped = true
		c.KeepOnExit = keep
		return nil
	})
	if err != nil {
		return fmt.Errorf("stop %s: %w", c.ID, err)
	}
	return nil
}

func (e *Engine) signal(ctx context.Context, c *Container, sig int) error {
	return e.deliver(ctx, c, sig, false)
}

// deliver sends sig to the container's process, or with all to every
// process of the container.
func (e *Engine) deliver(ctx context.Context, c *Container, sig int, all bool) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sess, err := e.cfg.Agents.Session(sctx, agentID(c))
	if err != nil {
		return fmt.Errorf("signal %s: agent not connected: %w", c.ID, err)
	}
	if all {
		err = sess.SignalAll(ctx, sig)
	} else {
		err = sess.Signal(ctx, sig)
	}
	if err != nil {
		return fmt.Errorf("signal %s: %w", c.ID, err)
	}
	return nil
}

// thawForSignal carries out docker's rule for a signal sent to a paused
// container (kill, stop): SIGKILL and the container's stop signal (any
// signal when it has none) also unpause it, so that the process acts on the
// signal at once.
func (e *Engine) thawForSignal(ctx context.Context, c *Container, sig int) error {
	if c.State.Status != StatusPaused {
		return nil
	}
	if stop := c.Config.StopSignal; stop != "" && sig != int(unix.SIGKILL) {
		if s, err := ParseSignal(stop); err != nil || s != sig {
			return nil
		}
	}
	return e.setPaused(ctx, c, false)
}

// Stop sends the stop signal, waits the grace period (seconds; nil means
// the container's StopTimeout or 10, -1 forever), then SIGKILL.
func (e *Engine) Stop(ctx context.Context, ns, ref string, timeout *int, signal string) error {
	return e.stop(ctx, ns, ref, timeout, signal, false)
}

// stop is Stop; keep (docker restart's stop) keeps an --rm container
// whose run it ends (KeepOnExit).
func (e *Engine) stop(ctx context.Context, ns, ref string, timeout *int, signal string, keep bool) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if c.State.Status == StatusRestarting && c.Run == c.ExitedRun {
		return e.cancelRestart(ctx, c)
	}
	if !running(c) {
		return Errorf(KindNotModified, "container already stopped")
	}
	if signal == "" {
		signal = c.Config.StopSignal
	}
	if signal == "" {
		signal = "SIGTERM"
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	grace := 10
	if c.Config.StopTimeout != nil {
		grace = *c.Config.StopTimeout
	}
	if timeout != nil {
		grace = *timeout
	}
	run := c.Run
	if err := e.markStopped(ctx, c, keep); err != nil {
		return err
	}
	if err := e.signal(ctx, c, sig); err != nil {
		e.log.Warn("stop signal", "container", c.ID, "err", err)
	} else if err := e.thawForSignal(ctx, c, sig); err != nil {
		e.log.Warn("stop: unpause", "container", c.ID, "err", err)
	}
	defer e.publish(c, "stop", nil)
	var wait time.Duration = -1
	if grace >= 0 {
		wait = time.Duration(grace) * time.Second
	}
	if e.waitRunExit(ctx, ns, c.ID, run, wait) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := e.signal(ctx, c, int(unix.SIGKILL)); err != nil {
		e.log.Warn("stop kill", "container", c.ID, "err", err)
	}
	if e.waitRunExit(ctx, ns, c.ID, run, killWait) {
		return nil
	}
	e.failRun(ns, c.ID, run, "container did not exit after SIGKILL")
	return nil
}

// cancelRestart stops a container that waits for its restart policy's
// next start: it stays exited, as after docker stop.
func (e *Engine) cancelRestart(ctx context.Context, c *Container) error {
	run := c.Run
	_, err := e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		c.ManuallyStopped = true
		if c.State.Status == StatusRestarting && c.Run == run {
			c.State.Status = StatusExited
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stop %s: %w", c.ID, err)
	}
	e.notify.notify(c.ID)
	e.publish(c, "stop", nil)
	return nil
}

// waitRunExit waits up to d (d < 0: forever) for the exit of run to be stored
// (or the container to be gone). It reports whether that happened.
func (e *Engine) waitRunExit(ctx context.Context, ns, id string, run uint32, d time.Duration) bool {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	defer e.watch(ns, id)()
	for {
		ch := e.notify.changed(id)
		c, err := e.cfg.Store.GetContainer(ctx, ns, id)
		if err != nil || c.ExitedRun >= run {
			e.awaitNetDown(ctx, id) // stopped: its addresses are free
			return true
		}
		select {
		case <-ch:
		case <-timer:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Wait conditions of POST /containers/{id}/wait.
const (
	WaitNotRunning = "not-running"
	WaitNextExit   = "next-exit"
	WaitRemoved    = "removed"
)

// WaitResult is the exit status Wait returns.
type WaitResult struct {
	StatusCode int
	Error      string
}

// Wait blocks until the condition holds. ready is called once the wait is
// registered (so the API can send headers before blocking).
func (e *Engine) Wait(ctx context.Context, ns, ref, condition string, ready func()) (WaitResult, error) {
	c, primed, err := e.containerPrimed(ctx, ns, ref)
	if err != nil {
		return WaitResult{}, err
	}
	switch condition {
	case "", WaitNotRunning, WaitNextExit, WaitRemoved:
	default:
		return WaitResult{}, Errorf(KindInvalid, "invalid condition: %q", condition)
	}
	id, startExited := c.ID, c.ExitedRun
	if ready != nil {
		ready()
	}
	last := c
	defer e.watch(ns, id)()
	for {
		var ch <-chan struct{}
		if primed != nil { // the first look is the read above
			ch, primed, err = primed, nil, nil
		} else {
			ch = e.notify.changed(id)
			var gone bool
			var final WaitResult
			if final, gone, err = e.awaitRemoval(ctx, id); gone {
				return final, nil
			}
			if err != nil {
				return WaitResult{}, err
			}
			c, err = e.cfg.Store.GetContainer(ctx, ns, id)
		}
		if errors.Is(err, ErrNotFound) {
			if code, ok := e.removedCode(id); ok {
				return code, nil
			}
			// Removed with its exit in one write, maybe by another
			// control plane: its final state has the exit.
			if fr, ok := e.cfg.Store.(FinalRemover); ok {
				if fc, err := fr.Removed(ctx, ns, id); err == nil {
					return result(fc), nil
				}
			}
			return result(last), nil
		}
		if err != nil {
			return WaitResult{}, fmt.Errorf("wait %s: %w", id, err)
		}
		last = c
		switch condition {
		case "", WaitNotRunning:
			if !running(c) && c.Run == c.ExitedRun {
				return result(c), e.awaitNetDown(ctx, id)
			}
		case WaitNextExit:
			if c.ExitedRun > startExited {
				return result(c), e.awaitNetDown(ctx, id)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return WaitResult{}, ctx.Err()
		}
	}
}

func result(c *Container) WaitResult {
	return WaitResult{StatusCode: c.State.ExitCode, Error: c.State.Error}
}

// removal is this process's removal of a container.
type removal struct {
	result WaitResult    // the exit status the container had
	done   chan struct{} // closed once the removal is over
	gone   bool          // set before done closes: the record is deleted
	over   func()        // closes done, once
}

// removedCode returns the exit status a removed container had, for waiters
// that were woken only after the record was gone.
func (e *Engine) removedCode(id string) (WaitResult, bool) {
	if r := e.removalOf(id); r != nil {
		return r.result, true
	}
	return WaitResult{}, false
}

// removalOf is this process's removal of container id under way or done
// lately, or nil.
func (e *Engine) removalOf(id string) *removal {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.removed[id]
}

// awaitRemoval waits for this process's removal of container id, if one
// is under way or done: ok reports that it deleted the record, with the
// exit status the container had. A waiter woken during a removal (by the
// removal's own changes) need not read a record about to go, or gone.
func (e *Engine) awaitRemoval(ctx context.Context, id string) (WaitResult, bool, error) {
	r := e.removalOf(id)
	if r == nil {
		return WaitResult{}, false, nil
	}
	select {
	case <-r.done:
		return r.result, r.gone, nil
	case <-ctx.Done():
		return WaitResult{}, false, ctx.Err()
	}
}

// Remove deletes a container; force kills it first if it runs.
func (e *Engine) Remove(ctx context.Context, ns, ref string, force bool) error {
	return e.RemoveWithVolumes(ctx, ns, ref, force, false)
}

// RemoveWithVolumes is Remove that also removes the container's anonymous
// volumes when volumes is set (docker rm -v); named volumes stay.
func (e *Engine) RemoveWithVolumes(ctx context.Context, ns, ref string, force, volumes bool) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if !force {
		switch c.State.Status {
		// The Docker engine's wording (20.10, API 1.41), which clients
		// such as docker-py's tests look for.
		case StatusPaused:
			return Errorf(KindConflict, "You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", c.ID)
		case StatusRunning, StatusRestarting:
			return Errorf(KindConflict, "You cannot remove a %s container %s. Stop the container before attempting removal or force remove", c.State.Status, c.ID)
		}
	}
	return e.remove(ctx, c, volumes)
}

// forgetRuns drops what this process keeps of container id's runs: it is
// being removed. A Start still finishing then publishes no "start".
func (e *Engine) forgetRuns(id string) {
	e.mu.Lock()
	delete(e.startedRun, id)
	delete(e.diedRun, id)
	delete(e.starting, id)
	delete(e.exits, id)
	e.mu.Unlock()
}

// remove deletes c; volumes also removes its anonymous volumes.
func (e *Engine) remove(ctx context.Context, c *Container, volumes bool) error {
	e.forgetRuns(c.ID)
	e.shutdownAgent(ctx, c)
	final := result(c)
	if running(c) {
		final = WaitResult{StatusCode: 137}
	}
	r := e.beginRemoval(c, final)
	defer r.over()
	// Its addresses are released while the record is deleted (after an
	// exit, the release is under way already), and before the removal
	// is over: docker network rm right after works.
	if !e.netDownDone(c) {
		e.netDownAsync(c)
	}
	err := e.cfg.Store.DeleteContainer(ctx, c.Namespace, c.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.netReleased(ctx, c.ID)
		return fmt.Errorf("remove %s: %w", c.ID, err)
	}
	e.endRemoval(ctx, c, r, volumes)
	return nil
}

// netReleased waits for the release of removed container id's addresses
// under way, and forgets the run whose addresses it released.
func (e *Engine) netReleased(ctx context.Context, id string) {
	e.awaitNetDown(context.WithoutCancel(ctx), id)
	e.mu.Lock()
	delete(e.netDownRun, id)
	e.mu.Unlock()
}

// shutdownAgent tells c's agent, if connected, that c is removed.
func (e *Engine) shutdownAgent(ctx context.Context, c *Container) {
	aid := agentID(c)
	if !e.cfg.Agents.Connected(aid) {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if sess, err := e.cfg.Agents.Session(sctx, aid); err == nil {
		if err := sess.Shutdown(sctx); err != nil {
			e.log.Warn("shutdown agent", "container", c.ID, "err", err)
		}
	}
}

// beginRemoval records this process's removal of c, which had exit
// status final, for its waiters (awaitRemoval) until a minute after it;
// its over ends it.
func (e *Engine) beginRemoval(c *Container, final WaitResult) *removal {
	r := &removal{result: final, done: make(chan struct{})}
	r.over = sync.OnceFunc(func() { close(r.done) })
	e.mu.Lock()
	e.removed[c.ID] = r
	e.mu.Unlock()
	time.AfterFunc(time.Minute, func() {
		e.mu.Lock()
		if e.removed[c.ID] == r {
			delete(e.removed, c.ID)
		}
		e.mu.Unlock()
	})
	return r
}

// endRemoval does what follows the deletion of c's record (removal r):
// once its addresses are released the removal is over; then its volumes
// (anonymous ones too with volumes) and ports are released.
func (e *Engine) endRemoval(ctx context.Context, c *Container, r *removal, volumes bool) {
	e.netReleased(ctx, c.ID)
	r.gone = true
	r.over()
	e.releaseVolumes(context.WithoutCancel(ctx), c, volumes)
	e.notify.notify(c.ID)
	if c.Ports != nil {
		e.releasePorts(c, c.Run)
	}
	e.publish(c, "destroy", nil)
	// The agent ends its instance on Shutdown; one that has not connected
	// yet ends it when it calls back (AuthorizeAgent: no record, no instance). The
	// POST is cancelled all the same, so the invocation is not held.
	time.AfterFunc(5*time.Second, func() { e.cancelInvocation(c.ID) })
}

// Prune removes every stopped container matching f; it returns their IDs
// and the bytes freed: the files each added or changed in its instance
// (docker's measure; an instance that has ended has none left) and its
// output and pending uploads in the store.
func (e *Engine) Prune(ctx context.Context, ns string, f Filters) ([]string, uint64, error) {
	cs, err := e.cfg.Store.ListContainers(ctx, ns)
	if err != nil {
		return nil, 0, fmt.Errorf("prune: %w", err)
	}
	var deleted []string
	var freed uint64
	for _, c := range cs {
		if running(c) || c.State.Status == StatusRestarting || !f.matchPrune(c) {
			continue
		}
		size := e.storedBytes(ctx, c)
		if e.sizer != nil {
			size += uint64(e.sizer.SizeRw(ctx, ns, c))
		}
		if err := e.remove(ctx, c, false); err != nil {
			return deleted, freed, err
		}
		deleted = append(deleted, c.ID)
		freed += size
	}
	return deleted, freed, nil
}

// storedBytes is the size of what the store keeps of c's output.
func (e *Engine) storedBytes(ctx context.Context, c *Container) uint64 {
	var n uint64
	for after := uint64(0); ; {
		batch, err := e.cfg.Store.ReadLogs(ctx, c.Namespace, c.ID, after, readBatch)
		if err != nil || len(batch) == 0 {
			return n
		}
		for _, le := range batch {
			n += uint64(len(le.Data))
			after = le.Seq
		}
	}
}
