package engine

import (
	"bytes"
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Docker's health check defaults and bounds.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	maxHealthLog          = 5
	maxHealthOutput       = 4096
)

// hasHealthcheck reports whether c has a health check to run.
func hasHealthcheck(c *Container) bool {
	h := c.Config.Healthcheck
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" && len(probeArgs(h.Test)) > 0
}

// probeArgs turns a HEALTHCHECK test into a command line.
func probeArgs(test []string) []string {
	switch test[0] {
	case "CMD":
		return test[1:]
	case "CMD-SHELL":
		if len(test) > 1 {
			return []string{"/bin/sh", "-c", test[1]}
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// startHealth runs c's health check every interval while run runs, as an
// exec the agent carries, and records results in State.Health.
func (e *Engine) startHealth(c *Container, run uint32) {
	hc := *c.Config.Healthcheck
	interval := orDefault(hc.Interval, defaultHealthInterval)
	timeout := orDefault(hc.Timeout, defaultHealthTimeout)
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	started := time.Now()
	ns, id := c.Namespace, c.ID
	e.goBackground(func(ctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			cur, err := e.cfg.Store.GetContainer(ctx, ns, id)
			if err != nil || cur.Run != run || !running(cur) {
				return
			}
			if cur.State.Status == StatusPaused {
				continue
			}
			res := e.probe(ctx, cur, hc.Test, timeout)
			inStart := hc.StartPeriod > 0 && time.Since(started) < hc.StartPeriod
			e.recordHealth(ctx, cur, run, res, retries, inStart)
		}
	})
}

// probe runs one health check and returns its result.
func (e *Engine) probe(ctx context.Context, c *Container, test []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now().UTC(), ExitCode: -1}
	defer func() { res.End = time.Now().UTC() }()
	execID, err := e.ExecCreate(ctx, c.Namespace, c.ID, ExecConfig{Cmd: probeArgs(test), AttachStdout: true, AttachStderr: true, Probe: true})
	if err != nil {
		res.Output = err.Error()
		return res
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	err = e.ExecStart(pctx, c.Namespace, execID, ExecStartOptions{}, func(le LogEntry) error {
		if room := maxHealthOutput - out.Len(); room > 0 {
			out.Write(le.Data[:min(len(le.Data), room)])
		}
		return nil
	})
	res.Output = out.String()
	if pctx.Err() != nil {
		res.Output = "Health check exceeded timeout (" + timeout.String() + ")"
		return res
	}
	if err != nil {
		res.Output = err.Error()
		return res
	}
	if _, x, err := e.Exec(ctx, c.Namespace, execID); err == nil && x.ExitCode != nil {
		res.ExitCode = *x.ExitCode
	}
	return res
}

// recordHealth stores one result and the status it leads to.
func (e *Engine) recordHealth(ctx context.Context, c *Container, run uint32, res *container.HealthcheckResult, retries int, inStart bool) {
	var before, after container.HealthStatus
	c, err := e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		if c.Run != run || c.State.Health == nil {
			return nil
		}
		h := c.State.Health
		before = h.Status
		h.Log = append(h.Log, res)
		if len(h.Log) > maxHealthLog {
			h.Log = h.Log[len(h.Log)-maxHealthLog:]
		}
		switch {
		case res.ExitCode == 0:
			h.Status, h.FailingStreak = container.Healthy, 0
		case inStart:
			// failures during the start period do not count
		default:
			h.FailingStreak++
			if h.FailingStreak >= retries {
				h.Status = container.Unhealthy
			}
		}
		after = h.Status
		return nil
	})
	if err != nil {
		return
	}
	if after != before {
		e.publish(c, "health_status: "+string(after), nil)
	}
	e.notify.notify(c.ID)
}
