package engine

import (
	"context"
	"errors"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// lostMessage is State.Error of a run whose instance did not come back to a
// restarted control plane.
const lostMessage = "function instance lost while the control plane was down"

// Recover picks up what an earlier control plane process left behind on
// the store: containers whose instance may still run. Their agents dial
// back by themselves; Recover waits for each (at most BootTimeout), then
// resumes health checks. A run whose agent never comes back ends with
// exit code 255 and State.Error saying so; a start that was cut short (the
// process never reported running) ends the same way. Call it once the hub
// serves; it returns at once and works in the background.
func (e *Engine) Recover(ns string) {
	e.goBackground(func(ctx context.Context) {
		cs, err := e.cfg.Store.ListContainers(ctx, ns)
		if err != nil {
			e.log.Error("recover: list containers", "err", err)
			return
		}
		for _, c := range cs {
			if c.Run <= c.ExitedRun && c.Instance != "up" {
				continue
			}
			c := c
			e.goBackground(func(ctx context.Context) { e.recoverOne(ctx, c) })
		}
	})
}

// recoverOne waits for c's agent and settles c's state.
func (e *Engine) recoverOne(ctx context.Context, c *Container) {
	wctx, cancel := context.WithTimeout(ctx, e.cfg.BootTimeout)
	defer cancel()
	start := time.Now()
	sess, err := e.cfg.Agents.Session(wctx, agentID(c))
	if ctx.Err() != nil || err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return // shutting down (the hub closes first): the next process recovers it
	}
	if err != nil {
		e.log.Warn("recover: agent did not come back", "container", c.ID, "waited", time.Since(start).String())
		e.instanceGone(c)
		if c.Run > c.ExitedRun {
			e.failRun(c.Namespace, c.ID, c.Run, lostMessage)
		}
		return
	}
	e.log.Info("recover: agent is back", "container", c.ID, "after", time.Since(start).String())
	cur, err := e.cfg.Store.GetContainer(ctx, c.Namespace, c.ID)
	if err != nil {
		return
	}
	switch {
	case cur.Run > cur.ExitedRun && cur.State.Status == StatusCreated:
		// Start was cut short before the process ran: the client saw an
		// error, so the run ends and the instance goes.
		e.failRun(cur.Namespace, cur.ID, cur.Run, "the control plane restarted while starting the container")
		if err := sess.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			e.log.Warn("recover: end half-started instance", "container", cur.ID, "err", err)
		}
	default:
		if running(cur) && hasHealthcheck(cur) {
			e.startHealth(cur, cur.Run)
		}
		e.netRefresh(ctx, cur) // its view again, and its peers'
		e.resume(ctx, cur)
	}
}

// resume re-opens the invocation of c's instance: the one the earlier
// control plane held ended with it, so the platform takes the instance for
// idle (throttled, stopped at will, offered to new containers).
func (e *Engine) resume(ctx context.Context, c *Container) {
	if c.Instance != "up" {
		return
	}
	e.mu.Lock()
	held := e.invokes[c.ID] != nil
	e.mu.Unlock()
	if held {
		return
	}
	img, err := e.cfg.Store.GetImage(ctx, c.ImageID)
	if err != nil {
		e.log.Warn("recover: image of container", "container", c.ID, "err", err)
		return
	}
	lease, err := e.cfg.Fleet.Acquire(ctx, img, shapeOf(c))
	if err != nil {
		e.log.Warn("recover: function of container", "container", c.ID, "err", err)
		return
	}
	use := instanceUse{ns: c.Namespace, id: c.ID, name: c.Name, started: c.Usage.InstanceStarted}
	e.hold(c.ID, e.openInvocation(use, c.SecretHash, lease, proto.Invocation{ContainerID: agentID(c), Resume: true}, nil))
}

// instanceGone records that c's instance is gone, unless c has moved to
// another instance meanwhile.
func (e *Engine) instanceGone(c *Container) {
	_, err := e.cfg.Store.UpdateContainer(context.WithoutCancel(e.ctx), c.Namespace, c.ID, func(cur *Container) error {
		if cur.SecretHash == c.SecretHash {
			cur.Instance = "gone"
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.log.Error("record instance gone", "container", c.ID, "err", err)
	}
}
