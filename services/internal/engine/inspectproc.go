package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
)

// requestTimeout bounds a top or stats request to an agent.
const requestTimeout = 10 * time.Second

// ask sends a Request to a running container's agent and decodes the answer.
func (e *Engine) ask(ctx context.Context, c *Container, kind string, out any) error {
	if !running(c) {
		return Errorf(KindConflict, "Container %s is not running", c.ID)
	}
	sess, err := e.streamSession(ctx, c)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, c.ID, err)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	body, err := sess.Request(rctx, kind, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, c.ID, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", kind, c.ID, err)
	}
	return nil
}

// Top lists the container's processes (docker top), read by its agent.
func (e *Engine) Top(ctx context.Context, ns, ref string) (container.TopResponse, error) {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	var t proto.Top
	if err := e.ask(ctx, c, proto.RequestTop, &t); err != nil {
		return container.TopResponse{}, err
	}
	return container.TopResponse{Titles: t.Titles, Processes: t.Processes}, nil
}

// Stats emits resource samples of the container (docker stats): one (with a
// previous sample half a second earlier, so CPU use can be computed) unless
// stream, else one a second until ctx ends or the container stops.
func (e *Engine) Stats(ctx context.Context, ns, ref string, stream bool, emit func(container.StatsResponse) error) error {
	c, err := e.Container(ctx, ns, ref)
	if err != nil {
		return err
	}
	var prev *proto.Stats
	sample := func() (*proto.Stats, error) {
		cur, err := e.Container(ctx, ns, c.ID)
		if err != nil {
			return nil, err
		}
		var s proto.Stats
		if err := e.ask(ctx, cur, proto.RequestStats, &s); err != nil {
			return nil, err
		}
		return &s, nil
	}
	if !stream {
		if prev, err = sample(); err != nil {
			return err
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		s, err := sample()
		if err != nil {
			if prev != nil && stream {
				return nil // stopped while streaming
			}
			return err
		}
		if err := emit(statsResponse(c, s, prev)); err != nil || !stream {
			return err
		}
		prev = s
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil
		}
	}
}

func statsResponse(c *Container, s, prev *proto.Stats) container.StatsResponse {
	cpu := func(s *proto.Stats) container.CPUStats {
		return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: s.CPUTotal}, SystemUsage: s.SystemCPU, OnlineCPUs: s.OnlineCPUs}
	}
	r := container.StatsResponse{
		ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: s.Time,
		CPUStats:    cpu(s),
		MemoryStats: container.MemoryStats{Usage: s.MemoryUsage, Limit: s.MemoryLimit},
		PidsStats:   container.PidsStats{Current: s.Pids},
		NumProcs:    uint32(s.Pids),
		Networks: map[string]container.NetworkStats{"eth0": {
			RxBytes: s.Network.RxBytes, RxPackets: s.Network.RxPackets, RxErrors: s.Network.RxErrors, RxDropped: s.Network.RxDropped,
			TxBytes: s.Network.TxBytes, TxPackets: s.Network.TxPackets, TxErrors: s.Network.TxErrors, TxDropped: s.Network.TxDropped,
		}},
	}
	if prev != nil {
		r.PreRead, r.PreCPUStats = prev.Time, cpu(prev)
	}
	return r
}
