package engine

import (
	"context"
	"math"
	"time"
)

// Usage is what a container's function instances used: an instance
// counts from its invocation until it ends (linger included).
type Usage struct {
	// InstanceStarted is when the current instance was invoked (zero
	// when none is up).
	InstanceStarted time.Time `json:"instanceStarted,omitzero"`
	// Seconds sums the lives of its ended instances.
	Seconds float64 `json:"seconds,omitempty"`
	// Invocations counts its instances.
	Invocations int `json:"invocations,omitempty"`
}

// Prices are the deployment's prices in USD (Cloud Run functions bill
// vCPU-seconds, GiB-seconds and requests).
type Prices struct {
	VCPUSecond, GiBSecond, Invocation float64
}

// Cost is a container's or a namespace's use and its estimate.
type Cost struct {
	VCPUSeconds float64 `json:"vcpuSeconds"`
	GiBSeconds  float64 `json:"gibSeconds"`
	Invocations int     `json:"invocations"`
	USD         float64 `json:"usd"`
}

// add counts seconds of one instance and invocations.
func (c *Cost) add(seconds float64, invocations int, p Prices) {
	c.VCPUSeconds += seconds * InstanceVCPU
	c.GiBSeconds += seconds * instanceMemoryGiB
	c.Invocations += invocations
	c.USD = c.VCPUSeconds*p.VCPUSecond + c.GiBSeconds*p.GiBSecond + float64(c.Invocations)*p.Invocation
}

// round keeps costs readable: milliseconds of use, nano-dollars (one
// invocation costs 0.4 micro-dollars).
func (c Cost) round() Cost {
	r := func(v, unit float64) float64 { return math.Round(v/unit) * unit }
	return Cost{VCPUSeconds: r(c.VCPUSeconds, 1e-3), GiBSeconds: r(c.GiBSeconds, 1e-3), Invocations: c.Invocations, USD: r(c.USD, 1e-9)}
}

// ContainerCost is what c has used so far, its current instance included.
func (e *Engine) ContainerCost(c *Container, now time.Time) Cost {
	var out Cost
	secs := c.Usage.Seconds
	if c.Instance == "up" && !c.Usage.InstanceStarted.IsZero() {
		secs += now.Sub(c.Usage.InstanceStarted).Seconds()
	}
	out.add(secs, c.Usage.Invocations, e.cfg.Prices)
	return out.round()
}

// UsageRecord is one ended function instance of a container, kept after
// the container is removed.
type UsageRecord struct {
	Namespace string    `json:"ns"`
	Container string    `json:"container"`
	Name      string    `json:"name"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
}

// UsageLedger keeps UsageRecords per namespace.
type UsageLedger interface {
	// AppendUsage stores a record.
	AppendUsage(ctx context.Context, r UsageRecord) error
	// ReadUsage returns the namespace's records that ended at or after
	// since, in order of their end.
	ReadUsage(ctx context.Context, ns string, since time.Time) ([]UsageRecord, error)
}

// instanceUse is an instance whose use is recorded when it ends.
type instanceUse struct {
	ns, id, name string
	started      time.Time
}

// instanceUsed records the use of an instance that ended: on the
// container (if still there and still on that instance) and in the ledger.
func (e *Engine) instanceUsed(u instanceUse, secretHash string) {
	if u.started.IsZero() {
		return // made before usage was recorded
	}
	now := time.Now().UTC()
	ctx := context.WithoutCancel(e.ctx)
	if _, removed := e.removedCode(u.id); removed {
		// Removed by this process: no record to update (and no read of it).
		e.recordUsage(ctx, u, now)
		return
	}
	_, _ = e.cfg.Store.UpdateContainer(ctx, u.ns, u.id, func(c *Container) error {
		if c.SecretHash != secretHash || !c.Usage.InstanceStarted.Equal(u.started) {
			return nil
		}
		c.Usage.Seconds += now.Sub(u.started).Seconds()
		c.Usage.InstanceStarted = time.Time{}
		return nil
	})
	e.recordUsage(ctx, u, now)
}

// recordUsage stores the use of an instance that ended at end in the
// ledger.
func (e *Engine) recordUsage(ctx context.Context, u instanceUse, end time.Time) {
	if e.cfg.Ledger == nil {
		return
	}
	rec := UsageRecord{Namespace: u.ns, Container: u.id, Name: u.name, Started: u.started, Ended: end}
	if err := e.cfg.Ledger.AppendUsage(ctx, rec); err != nil {
		e.log.Error("record usage", "container", u.id, "err", err)
	}
}

// NamespaceUsage sums the use of namespace ns since a time: instances that
// ended since (their part after since) and the instances up now.
func (e *Engine) NamespaceUsage(ctx context.Context, ns string, since time.Time) (Cost, error) {
	var out Cost
	now := time.Now()
	if e.cfg.Ledger != nil {
		recs, err := e.cfg.Ledger.ReadUsage(ctx, ns, since)
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			start, inv := r.Started, 1
			if start.Before(since) {
				start, inv = since, 0 // invoked before the period
			}
			out.add(r.Ended.Sub(start).Seconds(), inv, e.cfg.Prices)
		}
	}
	cs, err := e.cfg.Store.ListContainers(ctx, ns)
	if err != nil {
		return out, err
	}
	for _, c := range cs {
		if c.Instance != "up" || c.Usage.InstanceStarted.IsZero() {
			continue
		}
		start, inv := c.Usage.InstanceStarted, 1
		if start.Before(since) {
			start, inv = since, 0
		}
		out.add(now.Sub(start).Seconds(), inv, e.cfg.Prices)
	}
	return out.round(), nil
}
