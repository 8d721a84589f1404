package engine

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
)

// MaxNameLength is the longest container name accepted. Docker has no
// limit of its own, but the stores key names (bbolt refuses keys over
// 32 KiB, Firestore document IDs over 1,500 bytes); DNS names, which
// container names become on a network, end at 253.
const MaxNameLength = 253

// checkName is docker's rule for a container name, plus the length.
func checkName(name string) error {
	if len(name) > MaxNameLength+1 { // a leading "/" is allowed
		return Errorf(KindInvalid, "Invalid container name (%s…): longer than %d characters", name[:32], MaxNameLength)
	}
	if !validName.MatchString(name) {
		return Errorf(KindInvalid, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// checkConfig refuses what dockerd's create refuses before it stores
// anything (daemon/container.go verifyContainerSettings), with its
// messages: health-check durations under 1 ms (a 1 ns interval would
// burn a core probing), negative retries, unknown restart policies and
// stop signals.
func checkConfig(cfg *container.Config, hc *container.HostConfig) error {
	if h := cfg.Healthcheck; h != nil {
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
			if d.v != 0 && d.v < time.Millisecond {
				return Errorf(KindInvalid, "%s in Healthcheck cannot be less than 1ms", d.name)
			}
		}
		if h.Retries < 0 {
			return Errorf(KindInvalid, "Retries in Healthcheck cannot be negative")
		}
	}
	if cfg.StopSignal != "" {
		if _, err := ParseSignal(cfg.StopSignal); err != nil {
			return err
		}
	}
	if hc != nil {
		if err := checkRestartPolicy(hc.RestartPolicy); err != nil {
			return err
		}
		if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
			return Errorf(KindInvalid, "can't create 'AutoRemove' container with restart policy")
		}
	}
	return nil
}

// checkRestartPolicy is dockerd's check of a restart policy.
func checkRestartPolicy(p container.RestartPolicy) error {
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return Errorf(KindInvalid, "maximum retry count cannot be used with restart policy '%s'", p.Name)
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return Errorf(KindInvalid, "maximum retry count cannot be negative")
		}
	default:
		return Errorf(KindInvalid, "invalid restart policy '%s'", p.Name)
	}
	return nil
}

// checkNoNUL refuses a value with a NUL byte: no path, argument or
// variable of a process can hold one (the system calls would fail later,
// as a 500).
func checkNoNUL(what string, values ...string) error {
	for _, v := range values {
		if strings.IndexByte(v, 0) >= 0 {
			return Errorf(KindInvalid, "invalid %s: contains a NUL byte", what)
		}
	}
	return nil
}

// CheckPath refuses a container path that no file can have.
func CheckPath(p string) error { return checkNoNUL("path", p) }

// maxProcessBytes bounds the encoded process of a Start or ExecStart
// message: half the agent's frame limit, leaving the rest for the network
// view that travels with it. A frame over the limit would drop the
// agent's connection; the hub refuses those too (agenthub), but here the
// client learns it at create, before anything runs.
const maxProcessBytes = proto.MaxControl / 2

// checkProcessSize refuses a process whose message would not fit.
func checkProcessSize(what string, p proto.Process) error {
	b, err := json.Marshal(p)
	if err != nil {
		return Errorf(KindInvalid, "%s: %v", what, err)
	}
	if len(b) > maxProcessBytes {
		return Errorf(KindInvalid, "%s: command, environment and settings take %d bytes encoded, over the %d a container's process may have here; pass large data through a file (docker cp) or stdin", what, len(b), maxProcessBytes)
	}
	return nil
}
