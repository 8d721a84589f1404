package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// shouldRestart applies the restart policy to a run that just exited.
func shouldRestart(c *Container) bool {
	if c.ManuallyStopped || c.HostConfig == nil || c.HostConfig.AutoRemove {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartDelay is docker's back-off: 100 ms doubling per restart, at most a minute.
func restartDelay(count int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < count && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// scheduleRestart starts c again after the back-off, as its policy asks.
func (e *Engine) scheduleRestart(c *Container) {
	ns, id, count := c.Namespace, c.ID, c.RestartCount
	e.goBackground(func(ctx context.Context) {
		t := time.NewTimer(restartDelay(count))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		cur, err := e.cfg.Store.GetContainer(ctx, ns, id)
		if err != nil || cur.State.Status != StatusRestarting {
			return // removed, or stopped/started by the user meanwhile
		}
		if err := e.Start(ctx, ns, id); err != nil && KindOf(err) != KindNotModified {
			e.log.Warn("restart by policy", "container", id, "err", err)
		}
	})
}

// Restart stops (if running) and starts a container: same ID, new run.
func (e *Engine) Restart(ctx context.Context, ns, ref string, timeout *int, signal string) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	// As docker's, the stop of a restart does not remove an --rm container.
	if err := e.stop(ctx, ns, c.ID, timeout, signal, true); err != nil && KindOf(err) != KindNotModified {
		return fmt.Errorf("restart %s: %w", ref, err)
	}
	if err := e.Start(ctx, ns, c.ID); err != nil && KindOf(err) != KindNotModified {
		return fmt.Errorf("restart %s: %w", ref, err)
	}
	e.publish(c, "restart", nil)
	return nil
}

// Pause freezes every process of the container (SIGSTOP to each, as the
// agent sends it); Unpause resumes them.
func (e *Engine) Pause(ctx context.Context, ns, ref string) error {
	return e.pause(ctx, ns, ref, true)
}

// Unpause resumes a paused container.
func (e *Engine) Unpause(ctx context.Context, ns, ref string) error {
	return e.pause(ctx, ns, ref, false)
}

func (e *Engine) pause(ctx context.Context, ns, ref string, pause bool) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	switch {
	case pause && c.State.Status == StatusPaused:
		return Errorf(KindConflict, "Container %s is already paused", c.ID)
	case pause && c.State.Status != StatusRunning:
		return Errorf(KindConflict, "Container %s is not running", c.ID)
	case !pause && c.State.Status != StatusPaused:
		return Errorf(KindConflict, "Container %s is not paused", c.ID)
	}
	return e.setPaused(ctx, c, pause)
}

// setPaused freezes (SIGSTOP) or thaws (SIGCONT) every process of c, then
// records its status and publishes the pause or unpause event.
func (e *Engine) setPaused(ctx context.Context, c *Container, pause bool) error {
	sig, status, action := unix.SIGCONT, StatusRunning, "unpause"
	if pause {
		sig, status, action = unix.SIGSTOP, StatusPaused, "pause"
	}
	if err := e.deliver(ctx, c, int(sig), true); err != nil {
		return fmt.Errorf("%s %s: %w", action, c.ID, err)
	}
	run := c.Run
	_, err := e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		if c.Run == run && c.ExitedRun < run {
			c.State.Status = status
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, c.ID, err)
	}
	e.notify.notify(c.ID)
	e.publish(c, action, nil)
	return nil
}

// Rename gives a container a new name, unique in its namespace.
func (e *Engine) Rename(ctx context.Context, ns, ref, name string) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		return Errorf(KindInvalid, "Neither old nor new names may be empty")
	}
	if err := checkName(name); err != nil {
		return err
	}
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	if c.Name == name {
		return Errorf(KindInvalid, "Renaming a container with the same name as its current name")
	}
	old := c.Name
	_, err = e.cfg.Store.UpdateContainer(ctx, ns, c.ID, func(c *Container) error {
		c.Name = name
		return nil
	})
	if errors.Is(err, ErrConflict) {
		other, _ := e.cfg.Store.GetContainer(ctx, ns, name)
		otherID := ""
		if other != nil {
			otherID = other.ID
		}
		return &Error{Kind: KindConflict, Err: err, Message: fmt.Sprintf(
			"Conflict. The container name \"/%s\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, otherID)}
	}
	if err != nil {
		return fmt.Errorf("rename %s: %w", ref, err)
	}
	c.Name = name
	e.netRefresh(ctx, c) // peers resolve the new name
	e.publish(c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}

// Update changes what can change on a function: the restart policy.
// Resource limits are fixed per function; they are reported as warnings.
func (e *Engine) Update(ctx context.Context, ns, ref string, u container.UpdateConfig) ([]string, error) {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	var warnings []string
	if !reflect.DeepEqual(u.Resources, container.Resources{}) {
		// Shown in inspect as docker shows them; what the table says of
		// each (options.go) holds here too.
		hc := *c.HostConfig
		mergeResources(&hc.Resources, u.Resources)
		w, err := checkOptions(c.Config, &hc)
		if err != nil {
			return nil, err
		}
		warnings = append(w, "the resources of a running container's function instance do not change")
		_, err = e.cfg.Store.UpdateContainer(ctx, ns, c.ID, func(c *Container) error {
			mergeResources(&c.HostConfig.Resources, u.Resources)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", ref, err)
		}
	}
	if u.RestartPolicy.Name != "" {
		if err := checkRestartPolicy(u.RestartPolicy); err != nil {
			return nil, err
		}
		if c.HostConfig.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return nil, Errorf(KindInvalid, "Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		_, err = e.cfg.Store.UpdateContainer(ctx, ns, c.ID, func(c *Container) error {
			c.HostConfig.RestartPolicy = u.RestartPolicy
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", ref, err)
		}
	}
	e.publish(c, "update", nil)
	return warnings, nil
}

// mergeResources sets in r the resource fields u sets (non-zero), as
// docker update changes only what it is given.
func mergeResources(r *container.Resources, u container.Resources) {
	dst, src := reflect.ValueOf(r).Elem(), reflect.ValueOf(u)
	for i := 0; i < src.NumField(); i++ {
		if f := src.Field(i); !f.IsZero() {
			dst.Field(i).Set(f)
		}
	}
}
