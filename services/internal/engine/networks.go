package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/sockerless/sockerless/agent/proto"
)

// netUp gives c its addresses as it starts and returns the view for its
// Start (nil without a network plane).
func (e *Engine) netUp(ctx context.Context, c *Container) (*proto.NetworkView, error) {
	if e.cfg.Networks == nil {
		return nil, nil
	}
	v, err := e.cfg.Networks.Up(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", c.ID, err)
	}
	return v, nil
}

// netUpAsync runs netUp and then linkEnv for starting container c in
// the background; the function it returns waits for their results. c
// must not change until then.
func (e *Engine) netUpAsync(ctx context.Context, c *Container) func() (*proto.NetworkView, []string, error) {
	var (
		view    *proto.NetworkView
		linkEnv []string
		err     error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if view, err = e.netUp(ctx, c); err == nil {
			linkEnv, err = e.linkEnv(ctx, c)
		}
	}()
	return func() (*proto.NetworkView, []string, error) {
		<-done
		return view, linkEnv, err
	}
}

// linkEnver is a network plane that gives legacy links' variables
// (netplane.Plane.LinkEnv).
type linkEnver interface {
	LinkEnv(ctx context.Context, c *Container) ([]string, error)
}

// linkEnv is the variables of c's legacy links, after netUp.
func (e *Engine) linkEnv(ctx context.Context, c *Container) ([]string, error) {
	le, ok := e.cfg.Networks.(linkEnver)
	if !ok || c.HostConfig == nil || len(c.HostConfig.Links) == 0 {
		return nil, nil
	}
	env, err := le.LinkEnv(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", c.ID, err)
	}
	return env, nil
}

// netDown releases the addresses of container c once its run has ended or
// it is removed. It runs detached from the caller's cancellation: peers
// must not keep reaching a container that is gone.
func (e *Engine) netDown(c *Container) {
	if e.cfg.Networks == nil || c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 30*time.Second)
	defer cancel()
	if err := e.cfg.Networks.Down(ctx, c); err != nil {
		e.log.Error("release container addresses", "container", c.ID, "err", err)
		return
	}
	if !running(c) {
		e.mu.Lock()
		e.netDownRun[c.ID] = c.Run
		e.mu.Unlock()
	}
}

// netDownAsync is netDown in the background, unless one of c's is under
// way already; awaitNetDown waits for it.
func (e *Engine) netDownAsync(c *Container) {
	if e.cfg.Networks == nil || c == nil {
		return
	}
	e.mu.Lock()
	if e.netDowns[c.ID] != nil {
		e.mu.Unlock()
		return
	}
	done := make(chan struct{})
	e.netDowns[c.ID] = done
	e.mu.Unlock()
	e.goBackground(func(context.Context) {
		defer close(done)
		e.netDown(c)
		e.mu.Lock()
		delete(e.netDowns, c.ID)
		e.mu.Unlock()
	})
}

// awaitNetDown waits for the release of container id's addresses under
// way in the background, if any.
func (e *Engine) awaitNetDown(ctx context.Context, id string) error {
	e.mu.Lock()
	done := e.netDowns[id]
	e.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// netDownDone reports whether c, stopped, has no addresses to release:
// it never started (only a start gives addresses), or this process
// released them at the end of its last run (a later run, or a connect,
// needs it running again).
func (e *Engine) netDownDone(c *Container) bool {
	if running(c) {
		return false
	}
	if c.Run == 0 {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.netDownRun[c.ID]
	return ok && r == c.Run
}

// netRefresh re-sends the view of a running container to its agent (a
// rename changes its names; an agent back after a restart gets it again).
func (e *Engine) netRefresh(ctx context.Context, c *Container) {
	if e.cfg.Networks == nil || !running(c) {
		return
	}
	if _, err := e.cfg.Networks.Up(ctx, c); err != nil {
		e.log.Warn("refresh network view", "container", c.ID, "err", err)
	}
}

// PublishEvent publishes an event of another object than a container (a
// network's create, connect, disconnect, destroy) to namespace ns's docker
// events clients and the store.
func (e *Engine) PublishEvent(ns string, typ events.Type, action, id string, attrs map[string]string) {
	now := time.Now()
	e.publishMessage(ns, events.Message{
		Type: typ, Action: events.Action(action), Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// SendView sends a network view to the agent of container id of namespace
// ns, if it is connected (netplane.Agents).
func (e *Engine) SendView(ctx context.Context, ns, id string, v proto.NetworkView) error {
	aid := agentID(&Container{Namespace: ns, ID: id})
	if !e.cfg.Agents.Connected(aid) {
		return Errorf(KindUnavailable, "agent of %s not connected", id)
	}
	sess, err := e.cfg.Agents.Session(ctx, aid)
	if err != nil {
		return err
	}
	ss, ok := sess.(StreamSession)
	if !ok {
		return Errorf(KindNotImplemented, "the agent hub carries no network views")
	}
	return ss.Network(ctx, v)
}
