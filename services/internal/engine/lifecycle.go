package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
)

// agentID is the identity a container's agent presents to the hub.
func agentID(c *Container) string { return c.Namespace + "/" + c.ID }

// AgentID is the identity container c's agent presents to the hub, by
// which the hub knows its connections: "namespace/id".
func AgentID(c *Container) string { return agentID(c) }

// SplitAgentID undoes AgentID.
func SplitAgentID(aid string) (ns, id string, ok bool) { return splitAgentID(aid) }

// splitAgentID undoes agentID.
func splitAgentID(aid string) (ns, id string, ok bool) {
	i := strings.LastIndexByte(aid, '/')
	if i <= 0 || i == len(aid)-1 {
		return "", "", false
	}
	return aid[:i], aid[i+1:], true
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Container finds a container by ID, name or ID prefix: docker's 404
// "No such container: x" when there is none.
func (e *Engine) Container(ctx context.Context, ns, ref string) (*Container, error) {
	c, err := e.cfg.Store.GetContainer(ctx, ns, ref)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, ErrNotFound):
		return nil, &Error{Kind: KindNotFound, Message: "No such container: " + ref, Err: err}
	case errors.Is(err, ErrAmbiguous):
		return nil, &Error{Kind: KindInvalid, Message: "Multiple IDs found with provided prefix: " + ref, Err: err}
	}
	return nil, fmt.Errorf("get container %s: %w", ref, err)
}

// containerPrimed is Container that also returns the notification
// channel of the container registered before it was read (nil when ref
// is not a full ID): a waiter whose first look is that read need not read
// it again, as any change since closes the channel.
func (e *Engine) containerPrimed(ctx context.Context, ns, ref string) (*Container, <-chan struct{}, error) {
	var ch <-chan struct{}
	if isFullID(ref) {
		ch = e.notify.changed(ref)
	}
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return nil, nil, err
	}
	if c.ID != ref {
		ch = nil
	}
	return c, ch, nil
}

func running(c *Container) bool {
	return c.State.Status == StatusRunning || c.State.Status == StatusPaused
}

// containerEnv is the environment of c's processes: its Config.Env, its
// legacy links' variables it does not set, and, as docker adds it,
// HOSTNAME.
func containerEnv(c *Container) []string {
	env := c.Config.Env
	if len(c.LinkEnv) > 0 {
		env = UserEnvFirst(env, c.LinkEnv)
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOSTNAME=") }) {
		env = append(slices.Clip(env), "HOSTNAME="+c.Config.Hostname)
	}
	return env
}

// groupAdd is c's --group-add, for its process and its execs.
func groupAdd(c *Container) []string {
	if c.HostConfig == nil {
		return nil
	}
	return c.HostConfig.GroupAdd
}

// process is what the agent runs for c.
func process(c *Container) proto.Process {
	args := append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
	return proto.Process{
		Args:      args,
		Env:       containerEnv(c),
		GroupAdd:  groupAdd(c),
		Dir:       c.Config.WorkingDir,
		User:      c.Config.User,
		Tty:       c.Config.Tty,
		OpenStdin: c.Config.OpenStdin,
	}
}

// Start runs the container: on its lingering instance if it has one, else
// as a new invocation of its image's function. It returns once the process
// runs (or failed to start).
func (e *Engine) Start(ctx context.Context, ns, ref string) error {
	c, err := e.startingState(ctx, ns, ref)
	if err != nil {
		return err
	}
	if running(c) {
		return Errorf(KindNotModified, "container already started")
	}
	if c.State.Status == StatusRemoving {
		return Errorf(KindConflict, "container %s is marked for removal and cannot be started", c.ID)
	}
	if len(process(c).Args) == 0 {
		return Errorf(KindInvalid, "no command specified")
	}
	if err := checkLogConfig(c); err != nil {
		e.refuseStart(ctx, c, err)
		return err
	}
	if err := e.checkQuota(ctx, ns, c.ID); err != nil {
		return err
	}
	aid := agentID(c)
	reuse := c.Instance == "up" && e.cfg.Agents.Connected(aid)
	var secret, secretHash string
	var instanceStarted time.Time
	var lease Lease
	if !reuse {
		img, err := e.imageByID(ctx, c.ImageID)
		if err != nil {
			return fmt.Errorf("start %s: image %s: %w", c.ID, c.ImageID, err)
		}
		if lease, err = e.cfg.Fleet.Acquire(ctx, img, shapeOf(c)); err != nil {
			return fmt.Errorf("start %s: %w", c.ID, err)
		}
		// The invocation holds the lease from here; until then, a start
		// that fails gives it back.
		defer func() {
			if lease != nil {
				lease.Release()
			}
		}()
		secret = randomHex(32)
		secretHash, instanceStarted = hashSecret(secret), time.Now().UTC()
	}
	// Ports are bound before anything starts: a port that is taken fails
	// the start as Docker's does, and no instance is made for nothing.
	ports, err := e.publishPorts(ctx, c, c.Run+1)
	if err != nil {
		if ctx.Err() == nil {
			e.refuseStart(ctx, c, err)
		}
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	var inv *invocation
	if !reuse {
		// The instance boots while the claim is stored (a round trip on a
		// shared store, well within the boot): its agent calling back
		// first waits for the claim (AuthorizeAgent), and the instance of
		// a claim that loses is ended (claimDecided).
		decided := e.claimPending(secretHash)
		inv = e.invoke(c, lease, secret, secretHash, instanceStarted, decided)
		lease = nil
	}
	// The container's addresses are taken while the claim is stored and
	// the instance boots: the network plane's store writes wait for
	// neither (on a shared store, each is a round trip).
	up := e.netUpAsync(ctx, c)
	claimed := false
	cc, err := e.cfg.Store.UpdateContainer(ctx, ns, c.ID, func(c *Container) error {
		if running(c) || c.Run > c.ExitedRun {
			return Errorf(KindNotModified, "container already started")
		}
		if c.State.Status == StatusRemoving { // decided above on a state maybe not current
			return Errorf(KindConflict, "container %s is marked for removal and cannot be started", c.ID)
		}
		claimed = true
		c.Ports = ports
		c.Run++
		c.State.StartedAt = time.Now().UTC()
		c.State.Error = ""
		c.ManuallyStopped, c.KeepOnExit = false, false
		if !reuse {
			c.SecretHash = secretHash
			c.Instance = "up"
			c.Usage.InstanceStarted = instanceStarted
			c.Usage.Invocations++
			c.Acked = nil // a new instance's agent numbers its frames from 1
			c.StartedBy, c.StartClaim = e.process, time.Now().Add(e.cfg.BootTimeout)
		}
		return nil
	})
	if inv != nil {
		e.claimDecided(c.ID, secretHash, inv, err == nil)
	}
	if err != nil {
		if !claimed && ports != nil && KindOf(err) != KindNotModified {
			e.releasePorts(c, c.Run+1)
		}
		// Started elsewhere meanwhile, its addresses are that start's
		// too (Up is idempotent); else (removed, or the claim failed) they
		// go, once taken: a removal of a container that never ran
		// releases none.
		if _, _, upErr := up(); upErr == nil && KindOf(err) != KindNotModified {
			e.netDown(c)
		}
		return fmt.Errorf("start %s: %w", ref, err)
	}
	c = cc
	run := c.Run
	sess, err := e.session(ctx, aid, inv)
	view, linkEnv, upErr := up() // before any failRun, which releases them
	if err != nil {
		if !reuse {
			// Given up before its agent called back: recorded before the
			// run fails, so the agent, should it call back yet, is told
			// to end its instance (AuthorizeAgent) and not kept busy.
			e.instanceGone(c)
		}
		e.failRun(ns, c.ID, run, err.Error())
		e.cancelInvocation(c.ID)
		return &Error{Kind: KindInternal, Message: err.Error(), Err: err}
	}
	if len(c.PendingUploads) > 0 { // docker cp before the first start
		if err := e.applyUploads(ctx, c); err != nil {
			e.failRun(ns, c.ID, run, err.Error())
			return fmt.Errorf("start %s: %w", c.ID, err)
		}
	}
	if upErr != nil {
		e.failRun(ns, c.ID, run, upErr.Error())
		return upErr
	}
	c.LinkEnv = linkEnv
	st := proto.Start{Run: run, Process: process(c), Network: view, Binds: startBinds(c)}
	if c.HostConfig != nil && c.Config.Tty {
		if cs := c.HostConfig.ConsoleSize; cs[0] > 0 && cs[1] > 0 {
			st.Rows, st.Cols = uint16(cs[0]), uint16(cs[1])
		}
	}
	e.mu.Lock()
	e.starting[c.ID] = run
	e.mu.Unlock()
	pid, err := sess.Start(ctx, st)
	if err != nil {
		if KindOf(err) != KindInvalid { // a start failure the agent reported is stored already
			e.failRun(ns, c.ID, run, err.Error())
		}
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	// A short run's exit is often stored (by the hub, in this process)
	// before Start gets here, or right after (exitFollows): then there is
	// nothing to record, unless links' variables are to be kept.
	e.mu.Lock()
	stored := e.startedRun[c.ID] >= run
	e.mu.Unlock()
	if exited := len(linkEnv) == 0 && (stored || e.exitFollows(ctx, c.ID, run)); !exited {
		if err := e.recordRunning(ctx, ns, c.ID, run, pid, linkEnv); err != nil {
			return err
		}
	}
	e.notify.notify(c.ID)
	e.publishStart(c, run)
	if hasHealthcheck(c) {
		e.startHealth(c, run)
	}
	return nil
}

// exitMark is what the hub has of a container's frames, for a start
// waiting for its exit: the last run whose exit it received and the last
// whose exit it stored, how many output batches it is storing, and when it
// last stored one.
type exitMark struct {
	received, stored uint32
	storing          int
	landed           time.Time
}

// exitGrace is how long a start waits for its run's exit before it
// records the run running, on a store where a write is a round trip,
// counted from the start, and again from each output batch stored: the
// hub reads an agent's frames in order, so an exit sent right behind the
// output waits for the output's write. exitGraceMax bounds the whole wait
// for a process that keeps running while it writes.
const (
	exitGrace    = 10 * time.Millisecond
	exitGraceMax = 60 * time.Millisecond
)

// exitFollows reports whether run's exit of container id has been stored,
// waiting a moment for it on a store other control planes share (whose
// writes are round trips to Firestore): a process that ends at once
// (docker run --rm true, or echo hi) has its exit sent right behind its
// start and output, and the exit's write then records the whole run.
// Without the wait the start's write of the run running comes first and
// the exit's queues behind it: a write and a round trip more on the run's
// path. On the embedded store a write costs less than the wait. A
// long-running process costs its start the grace (exitGraceMax at most).
func (e *Engine) exitFollows(ctx context.Context, id string, run uint32) bool {
	if !e.storeShared() {
		return false
	}
	began := time.Now()
	giveUp := began.Add(exitGraceMax)
	// Once received, its write is under way: the wait for it is bounded
	// by the store's, and the running write would queue behind it anyway.
	landing := began.Add(storeExitWait)
	for {
		ch := e.arrivals.changed(id)
		e.mu.Lock()
		m := e.exits[id]
		e.mu.Unlock()
		if m.stored >= run {
			return true
		}
		deadline := landing
		if m.received < run {
			deadline = began.Add(exitGrace)
			if m.landed.After(began) {
				deadline = m.landed.Add(exitGrace)
			}
			if m.storing > 0 {
				deadline = giveUp
			}
			if deadline.After(giveUp) {
				deadline = giveUp
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
			return false
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// storeExitWait bounds how long a start waits for an exit the hub is
// storing; past it the start records the run running (a write that
// changes nothing once the exit is stored).
const storeExitWait = 5 * time.Second

// exitReceived and exitLanded mark run's exit of container id received by
// the hub, and stored; outputStoring and outputLanded an output batch
// being stored, and stored: for exitFollows.
func (e *Engine) exitReceived(id string, run uint32) {
	e.markExit(id, func(m *exitMark) { m.received = max(m.received, run) })
}

func (e *Engine) exitLanded(id string, run uint32) {
	e.markExit(id, func(m *exitMark) { m.received, m.stored = max(m.received, run), max(m.stored, run) })
}

func (e *Engine) outputStoring(id string) {
	e.markExit(id, func(m *exitMark) { m.storing++ })
}

func (e *Engine) outputLanded(id string) {
	e.markExit(id, func(m *exitMark) { m.storing, m.landed = max(m.storing-1, 0), time.Now() })
}

func (e *Engine) markExit(id string, set func(*exitMark)) {
	e.mu.Lock()
	if _, starting := e.starting[id]; !starting {
		e.mu.Unlock()
		return // no start of this process waits for it
	}
	m := e.exits[id]
	set(&m)
	e.exits[id] = m
	e.mu.Unlock()
	e.arrivals.notify(id)
}

// isFullID reports whether ref is a full container ID (64 hex digits).
func isFullID(ref string) bool {
	return len(ref) == 64 && strings.Trim(ref, "0123456789abcdef") == ""
}

// startingState is the container a start decides on: by a full ID, the
// state this process knows of it (a store read less on docker run's
// path), since the start's claim is written on that state only if it is
// still current, and decides again on the record as it is otherwise.
func (e *Engine) startingState(ctx context.Context, ns, ref string) (*Container, error) {
	if kc, ok := e.cfg.Store.(KnownContainers); ok && isFullID(ref) {
		if c, ok := kc.KnownContainer(ns, ref); ok {
			return c, nil
		}
	}
	return e.Container(ctx, ns, ref)
}

// recordRunning stores that run of container id runs as pid, unless it
// already exited.
func (e *Engine) recordRunning(ctx context.Context, ns, id string, run uint32, pid int, linkEnv []string) error {
	_, err := e.cfg.Store.UpdateContainer(ctx, ns, id, func(c *Container) error {
		if c.ExitedRun >= run || c.Run != run {
			return nil // it already exited; the exit is stored
		}
		c.State.Status = StatusRunning
		c.State.Pid = pid
		c.LinkEnv = linkEnv
		c.StartedBy, c.StartClaim = "", time.Time{}
		c.State.ExitCode = 0
		c.State.FinishedAt = time.Time{}
		if hasHealthcheck(c) {
			c.State.Health = &container.Health{Status: container.Starting}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("start %s: record running: %w", id, err)
	}
	return nil
}

// invoke opens the invocation that runs c on a new function instance,
// whose secret hashes to secretHash and whose use counts from started
// (the values c's claim stores), while the claim is stored: decided
// closes once the claim is decided (claimDecided).
func (e *Engine) invoke(c *Container, lease Lease, secret, secretHash string, started time.Time, decided <-chan struct{}) *invocation {
	use := instanceUse{ns: c.Namespace, id: c.ID, name: c.Name, started: started}
	return e.openInvocation(use, secretHash, lease, proto.Invocation{
		ContainerID:   agentID(c),
		Secret:        secret,
		CallbackURL:   e.cfg.CallbackURL,
		LingerSeconds: int(e.cfg.Linger / time.Second),
		Mounts:        invocationMounts(c),
	}, decided)
}

// Tries of one invocation that meets busy instances (ErrBusy): a new
// container's, and a resumed one's, which must find its own instance
// among the function's.
const (
	startAttempts  = 8
	resumeAttempts = 30
)

// openInvocation keeps req open as the invocation of the instance use,
// whose secret hashes to secretHash, until it ends, trying again while it
// meets busy instances. When the invocation of a new instance ends, so has
// the instance (instanceEnded). A resumed invocation that cannot find its
// instance ends without a verdict: the instance may live on. The
// invocation owns lease and releases it when it ends. The caller holds it
// as the container's (hold). A new instance's invocation is opened while
// its start's claim is stored: decided closes once the claim is decided
// (nil for a resumed invocation).
func (e *Engine) openInvocation(use instanceUse, secretHash string, lease Lease, req proto.Invocation, decided <-chan struct{}) *invocation {
	ctx, cancel := context.WithCancel(e.ctx)
	url := lease.URL()
	inv := &invocation{lease: lease, cancel: cancel, done: make(chan struct{})}
	ns, id, sh := use.ns, use.id, secretHash
	attempts := startAttempts
	if req.Resume {
		attempts = resumeAttempts
	}
	e.goBackground(func(context.Context) {
		var err error
		for try := 1; ; try++ {
			err = e.cfg.Functions.Invoke(ctx, url, req)
			if !errors.Is(err, ErrBusy) || try == attempts || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(min(try, 5)) * 100 * time.Millisecond):
			}
		}
		lease.Release()
		inv.err = err
		close(inv.done)
		e.mu.Lock()
		if e.invokes[id] == inv {
			delete(e.invokes, id)
		}
		e.mu.Unlock()
		cancel()
		if decided != nil {
			// What its end means for the container depends on the claim:
			// one that failed to boot may end before the claim is stored.
			select {
			case <-decided:
			case <-e.ctx.Done(): // closing: nothing is recorded below
			}
		}
		if inv.lost.Load() {
			return // its claim lost: the container never had this instance
		}
		if e.ctx.Err() == nil && (!req.Resume || err == nil) {
			e.instanceUsed(use, sh)
		}
		if req.Resume && err != nil {
			if e.ctx.Err() == nil {
				e.log.Warn("could not re-open the invocation of a recovered container", "container", id, "err", err)
			}
			return
		}
		e.instanceEnded(ns, id, sh, err)
	})
	return inv
}

// hold makes inv the open invocation of container id (cancelInvocation),
// unless it has ended already.
func (e *Engine) hold(id string, inv *invocation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-inv.done: // ended before it was held: its end found nothing to drop
	default:
		e.invokes[id] = inv
	}
}

// cancelInvocation ends the open invocation of container id, if any.
func (e *Engine) cancelInvocation(id string) {
	e.mu.Lock()
	inv := e.invokes[id]
	e.mu.Unlock()
	if inv != nil {
		inv.cancel()
	}
}

// session waits for the agent to call back, at most BootTimeout, and gives
// up early if the invocation ends first (the instance failed to boot).
func (e *Engine) session(ctx context.Context, aid string, inv *invocation) (AgentSession, error) {
	sctx, cancel := context.WithTimeout(ctx, e.cfg.BootTimeout)
	defer cancel()
	if inv != nil {
		go func() {
			select {
			case <-inv.done:
				cancel()
			case <-sctx.Done():
			}
		}()
	}
	sess, err := e.cfg.Agents.Session(sctx, aid)
	if err == nil {
		return sess, nil
	}
	if inv != nil {
		select {
		case <-inv.done:
			if inv.err != nil {
				return nil, fmt.Errorf("function instance failed before its agent called back: %w", inv.err)
			}
			return nil, errors.New("function instance ended before its agent called back")
		default:
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("agent did not call back within %s", e.cfg.BootTimeout)
}

// failRun records that run ended without an exit from the agent.
func (e *Engine) failRun(ns, id string, run uint32, msg string) {
	failed, err := e.cfg.Store.UpdateContainer(context.WithoutCancel(e.ctx), ns, id, func(c *Container) error {
		if c.ExitedRun >= run {
			return nil
		}
		c.ExitedRun = run
		c.StartedBy, c.StartClaim = "", time.Time{}
		c.Ports = nil
		c.State.Status = StatusExited
		c.State.ExitCode = 255
		c.State.Error = msg
		c.State.Pid = 0
		c.State.FinishedAt = time.Now().UTC()
		for _, x := range c.Execs { // their processes went with the instance
			if x.ExitCode == nil {
				code := 255
				x.ExitCode, x.Running, x.Pid, x.Error = &code, false, 0, msg
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.log.Error("record failed run", "container", id, "err", err)
	}
	e.netDown(failed)
	e.notify.notify(id)
	if c, err := e.cfg.Store.GetContainer(context.WithoutCancel(e.ctx), ns, id); err == nil && c.ExitedRun == run {
		e.releasePorts(c, run)
		e.publish(c, "die", map[string]string{"exitCode": "255"})
		e.autoRemove(c)
	}
}

// refuseStart records why c could not start before any run began, as
// docker does (State.Error, exit code 128 if it had none), and removes an
// auto-remove container at once, so that `docker run --rm` ends.
func (e *Engine) refuseStart(ctx context.Context, c *Container, why error) {
	updated, err := e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		c.State.Error = why.Error()
		if c.State.ExitCode == 0 {
			c.State.ExitCode = 128
		}
		return nil
	})
	if err != nil {
		e.log.Error("record refused start", "container", c.ID, "err", err)
		return
	}
	e.notify.notify(c.ID)
	if updated.HostConfig != nil && updated.HostConfig.AutoRemove && !running(updated) {
		// No output will come: attached clients need not be waited for.
		e.goBackground(func(ctx context.Context) {
			if err := e.remove(ctx, updated, true); err != nil {
				e.log.Error("auto-remove", "container", updated.ID, "err", err)
			}
		})
	}
}

// instanceEnded is called when an invocation POST ends; secretHash names
// the instance (each invocation has its own secret).
func (e *Engine) instanceEnded(ns, id, secretHash string, err error) {
	if e.ctx.Err() != nil {
		// The engine is closing and cancelled the invocation itself: the
		// instance runs on, and the next control plane recovers it.
		return
	}
	if _, removing := e.removedCode(id); removing {
		return // the instance ended because the container is being removed
	}
	current := false
	c, uerr := e.cfg.Store.UpdateContainer(context.WithoutCancel(e.ctx), ns, id, func(c *Container) error {
		current = c.SecretHash == secretHash
		if current {
			c.Instance = "gone"
		}
		return nil
	})
	if uerr != nil || !current {
		return // removed meanwhile, or an older instance
	}
	if c.ExitedRun < c.Run {
		msg := "function instance ended"
		if err != nil {
			msg += ": " + err.Error()
		}
		e.failRun(ns, id, c.Run, msg)
	}
}

// publishStart publishes run's "start" event once, whichever comes first:
// Start recording the run running, or the hub storing its exit
// while this process is still starting it. Neither publishes once the
// run is no longer this process's to start: a short run of --rm can exit
// and be removed (forgetRuns) before its Start gets here, and that Start
// must not publish a second "start" after "die".
func (e *Engine) publishStart(c *Container, run uint32) {
	e.mu.Lock()
	if e.startedRun[c.ID] >= run || e.starting[c.ID] != run {
		e.mu.Unlock()
		return
	}
	e.startedRun[c.ID] = run
	e.mu.Unlock()
	e.publish(c, "start", nil)
}
