package engine

import (
	"context"
	"fmt"
)

// Every container runs on one function instance of the functions' default
// shape (see whyShape): Cloud Run's 1 vCPU and 512 MiB. Quotas and costs
// count these.
const (
	InstanceVCPU      = 1.0
	InstanceMemory    = 512 << 20
	instanceMemoryGiB = float64(InstanceMemory) / (1 << 30)
)

// Quota limits one namespace; a zero field is no limit. Each limit names
// its setting in the 429 a client gets.
type Quota struct {
	// Running is the most containers running at once.
	Running int
	// VCPU is the most vCPUs of running containers.
	VCPU float64
	// Memory is the most bytes of memory of running containers.
	Memory int64
	// LogBytes is the most bytes of stored container output; past it,
	// containers of the namespace do not start until some are removed.
	LogBytes int64
}

// Setting names of the quotas, as 429 messages name them.
const (
	QuotaRunningSetting  = "quota-running"
	QuotaVCPUSetting     = "quota-vcpu"
	QuotaMemorySetting   = "quota-memory"
	QuotaLogBytesSetting = "quota-log-bytes"
)

// checkQuota refuses to start container id of namespace ns if, with it,
// the namespace would run or keep more than its quota. Two starts at the
// same moment may both pass (the check reads, then starts): a quota
// bounds spending, it is no lock.
func (e *Engine) checkQuota(ctx context.Context, ns, id string) error {
	q := e.cfg.Quota
	if q == (Quota{}) {
		return nil
	}
	cs, err := e.cfg.Store.ListContainers(ctx, ns)
	if err != nil {
		return fmt.Errorf("quota: list containers: %w", err)
	}
	n := 1 // the one starting
	var logBytes int64
	for _, c := range cs {
		logBytes += c.LogBytes
		if c.ID != id && (running(c) || c.Run > c.ExitedRun) {
			n++
		}
	}
	tooMany := func(what, setting string) error {
		return Errorf(KindTooManyRequests, "quota exceeded for namespace %s: %s (--%s); stop or remove containers, or ask an admin to raise it", ns, what, setting)
	}
	switch {
	case q.Running > 0 && n > q.Running:
		return tooMany(fmt.Sprintf("at most %d running containers", q.Running), QuotaRunningSetting)
	case q.VCPU > 0 && float64(n)*InstanceVCPU > q.VCPU:
		return tooMany(fmt.Sprintf("at most %g vCPUs of running containers (each has %g)", q.VCPU, InstanceVCPU), QuotaVCPUSetting)
	case q.Memory > 0 && int64(n)*InstanceMemory > q.Memory:
		return tooMany(fmt.Sprintf("at most %d MiB of memory of running containers (each has %d MiB)", q.Memory>>20, InstanceMemory>>20), QuotaMemorySetting)
	case q.LogBytes > 0 && logBytes >= q.LogBytes:
		return tooMany(fmt.Sprintf("at most %d bytes of stored logs (%d stored)", q.LogBytes, logBytes), QuotaLogBytesSetting)
	}
	return nil
}
