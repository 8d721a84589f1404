package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// This file is the one place that says, for every field of container
// create's Config and HostConfig (moby's types), what Sockerless does with
// it: carries it out, refuses it with a 400 naming it, or accepts it with a
// warning in the create response (where Docker itself only warns, or where
// the function instance decides). Nothing is accepted and silently ignored;
// TestOptionsCoverEveryField fails when moby grows a field this table does
// not name. The values the docker CLI and the SDKs send by default (empty
// values, NetworkMode "default", MemorySwappiness -1) count as unset.

// Verdict is what Sockerless does with an option a request sets.
type Verdict int

// Verdicts.
const (
	// Carried out: the container behaves as under Docker.
	Carried Verdict = iota
	// Refused at create with a 400 naming the option and why.
	Refused
	// Warned: accepted, shown in inspect, with a warning saying what
	// differs from Docker.
	Warned
)

// Option is one create option and what Sockerless does when it is set.
type Option struct {
	// Name is the option's path in the create body, e.g. "HostConfig.Privileged".
	Name    string
	Verdict Verdict
	// Why says why it is refused or what the warning is (also for a
	// carried option: how, where it is not obvious).
	Why string
	// set reports whether the request sets the option to something this
	// verdict applies to (nil: never; a carried option needs none).
	set func(*container.Config, *container.HostConfig) bool
}

// Reasons shared by several options.
const (
	whyKernel  = "a Cloud Run function instance runs in a sandbox whose kernel settings, devices and namespaces a container cannot change"
	whyCgroups = "a function instance is its own resource boundary: there is no cgroup hierarchy to place or tune the container in"
	whyWindows = "it applies to Windows containers only"
	whyAlone   = "a function instance runs one container alone, so a relative weight or soft limit has nothing to weigh against"
	// whyShape: resource limits choose the function's instance (a
	// function per image and shape; ShapeOf).
	whyShape = "the container's function runs on the smallest Cloud Run instance with that many CPUs and that much memory (1, 2, 4, 6 or 8 vCPU; up to 32 GiB); beyond it, create is refused"
)

// options is the table. Each refused entry of the network and storage
// planes is one line that flips to Carried when its plane lands.
var options = []Option{
	// Config
	{Name: "Config.Hostname", Verdict: Carried, Why: "shown in inspect, as $HOSTNAME, in /etc/hosts and to peers' DNS; the kernel host name of the instance is the platform's"},
	{Name: "Config.Domainname", Verdict: Warned, Why: "written into /etc/hosts as docker does; the function instance's kernel domain name is the platform's", set: func(c *container.Config, _ *container.HostConfig) bool { return c.Domainname != "" }},
	{Name: "Config.User", Verdict: Carried},
	{Name: "Config.AttachStdin", Verdict: Carried},
	{Name: "Config.AttachStdout", Verdict: Carried},
	{Name: "Config.AttachStderr", Verdict: Carried},
	{Name: "Config.ExposedPorts", Verdict: Carried, Why: "recorded, as Docker does; a port is published only if exposed (the CLI exposes every -p port), and -P publishes them all (ports.go)"},
	{Name: "Config.Tty", Verdict: Carried},
	{Name: "Config.OpenStdin", Verdict: Carried},
	{Name: "Config.StdinOnce", Verdict: Carried},
	{Name: "Config.Env", Verdict: Carried},
	{Name: "Config.Cmd", Verdict: Carried},
	{Name: "Config.Healthcheck", Verdict: Carried},
	{Name: "Config.ArgsEscaped", Verdict: Carried, Why: "Windows only; Docker ignores it on Linux too"},
	{Name: "Config.Image", Verdict: Carried},
	{Name: "Config.Volumes", Verdict: Carried, Why: "anonymous volumes (see mounts.go)"},
	{Name: "Config.WorkingDir", Verdict: Carried},
	{Name: "Config.Entrypoint", Verdict: Carried},
	{Name: "Config.NetworkDisabled", Verdict: Refused, Why: "a function instance always has its network, which Sockerless cannot take away (--network none gives no peers)", set: func(c *container.Config, _ *container.HostConfig) bool { return c.NetworkDisabled }},
	{Name: "Config.OnBuild", Verdict: Carried, Why: "image metadata, kept as Docker keeps it"},
	{Name: "Config.Labels", Verdict: Carried},
	{Name: "Config.StopSignal", Verdict: Carried},
	{Name: "Config.StopTimeout", Verdict: Carried},
	{Name: "Config.Shell", Verdict: Carried, Why: "image metadata, kept as Docker keeps it"},

	// HostConfig
	{Name: "HostConfig.Binds", Verdict: Carried, Why: "named and anonymous volumes, and host paths synced by the forwarder or the --dev control plane (refused for a client without either)"},
	{Name: "HostConfig.ContainerIDFile", Verdict: Carried, Why: "written by the docker CLI on the client's machine"},
	{Name: "HostConfig.LogConfig", Verdict: Carried, Why: "json-file, local and none; output is kept in the store (see checkLogDriver)"},
	{Name: "HostConfig.NetworkMode", Verdict: Carried, Why: "the default bridge, user networks and none (services/internal/netplane); host and container:NAME are refused there, naming why"},
	{Name: "HostConfig.PortBindings", Verdict: Carried, Why: "TCP ports are bound on the client's machine by the forwarder, or by the --dev control plane for its socket's clients (ports.go); UDP datagrams ride the same path, one stream per client address; SCTP, and a client without either, are refused with a 400"},
	{Name: "HostConfig.RestartPolicy", Verdict: Carried},
	{Name: "HostConfig.AutoRemove", Verdict: Carried},
	{Name: "HostConfig.VolumeDriver", Verdict: Carried, Why: "shown in inspect; as with docker, it matters only when the container creates a volume, and drivers other than local are refused then (volumes.go): Sockerless volumes live on the deployment's bucket or NFS share"},
	{Name: "HostConfig.VolumesFrom", Verdict: Carried},
	{Name: "HostConfig.ConsoleSize", Verdict: Carried},
	{Name: "HostConfig.Annotations", Verdict: Warned, Why: "annotations are kept in inspect; no OCI runtime reads them on a function instance", set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.Annotations) > 0 }},
	{Name: "HostConfig.CapAdd", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.CapAdd) > 0 }},
	{Name: "HostConfig.CapDrop", Verdict: Refused, Why: "dropping capabilities is not carried out by Sockerless's agent yet", set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.CapDrop) > 0 }},
	{Name: "HostConfig.CgroupnsMode", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool {
		return h.CgroupnsMode != "" && h.CgroupnsMode != container.CgroupnsModePrivate
	}},
	{Name: "HostConfig.Dns", Verdict: Carried, Why: "the embedded DNS server forwards to them, or resolv.conf names them (agent/internal/netview)"},
	{Name: "HostConfig.DnsOptions", Verdict: Carried, Why: "written into resolv.conf as docker does"},
	{Name: "HostConfig.DnsSearch", Verdict: Carried, Why: "written into resolv.conf as docker does"},
	{Name: "HostConfig.ExtraHosts", Verdict: Carried, Why: "written into /etc/hosts as docker does; host-gateway reaches the client machine's allowed ports"},
	{Name: "HostConfig.GroupAdd", Verdict: Carried, Why: "the process gets the extra groups (names from the image's /etc/group, or numbers)"},
	{Name: "HostConfig.IpcMode", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool {
		return !slices.Contains([]string{"", "private", "shareable"}, string(h.IpcMode))
	}},
	{Name: "HostConfig.Cgroup", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.Cgroup != "" }},
	{Name: "HostConfig.Links", Verdict: Carried, Why: "/etc/hosts entries on the default bridge, container-scoped DNS aliases on user networks"},
	{Name: "HostConfig.OomScoreAdj", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.OomScoreAdj != 0 }},
	{Name: "HostConfig.PidMode", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.PidMode != "" }},
	{Name: "HostConfig.Privileged", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.Privileged }},
	{Name: "HostConfig.PublishAllPorts", Verdict: Carried, Why: "every exposed TCP port on a free port of the client's machine, as HostConfig.PortBindings"},
	{Name: "HostConfig.ReadonlyRootfs", Verdict: Refused, Why: "a function instance's root filesystem cannot be made read-only for the container alone", set: func(_ *container.Config, h *container.HostConfig) bool { return h.ReadonlyRootfs }},
	{Name: "HostConfig.SecurityOpt", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.SecurityOpt) > 0 }},
	{Name: "HostConfig.StorageOpt", Verdict: Refused, Why: "a function instance's filesystem has no storage driver options", set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.StorageOpt) > 0 }},
	{Name: "HostConfig.Tmpfs", Verdict: Carried, Why: "a tmpfs the agent mounts"},
	{Name: "HostConfig.UTSMode", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.UTSMode != "" }},
	{Name: "HostConfig.UsernsMode", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.UsernsMode != "" }},
	{Name: "HostConfig.ShmSize", Verdict: Warned, Why: "the size of /dev/shm is the function instance's", set: func(_ *container.Config, h *container.HostConfig) bool { return h.ShmSize != 0 }},
	{Name: "HostConfig.Sysctls", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.Sysctls) > 0 }},
	{Name: "HostConfig.Runtime", Verdict: Carried, Why: `the container runs on a function instance; the default runtime's name "runc" is accepted, any other is unknown`},
	{Name: "HostConfig.Umask", Verdict: Refused, Why: "setting the process's umask is not carried out by Sockerless's agent yet", set: func(_ *container.Config, h *container.HostConfig) bool { return h.Umask != nil }},
	{Name: "HostConfig.Isolation", Verdict: Refused, Why: whyWindows, set: func(_ *container.Config, h *container.HostConfig) bool {
		return h.Isolation != "" && h.Isolation != container.IsolationDefault
	}},
	{Name: "HostConfig.Mounts", Verdict: Carried, Why: "volume, tmpfs and host bind mounts (binds synced by the forwarder or the --dev control plane; refused for a client without either)"},
	{Name: "HostConfig.MaskedPaths", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.MaskedPaths != nil }},
	{Name: "HostConfig.ReadonlyPaths", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return h.ReadonlyPaths != nil }},
	{Name: "HostConfig.Init", Verdict: Carried, Why: "the agent is the container's init: it reaps orphans and passes signals on"},

	// HostConfig resources
	{Name: "HostConfig.CpuShares", Verdict: Warned, Why: whyAlone, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPUShares != 0 }},
	{Name: "HostConfig.Memory", Verdict: Carried, Why: whyShape},
	{Name: "HostConfig.NanoCpus", Verdict: Carried, Why: whyShape},
	{Name: "HostConfig.CgroupParent", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CgroupParent != "" }},
	{Name: "HostConfig.BlkioWeight", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.BlkioWeight != 0 }},
	{Name: "HostConfig.BlkioWeightDevice", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.BlkioWeightDevice) > 0 }},
	{Name: "HostConfig.BlkioDeviceReadBps", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.BlkioDeviceReadBps) > 0 }},
	{Name: "HostConfig.BlkioDeviceWriteBps", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.BlkioDeviceWriteBps) > 0 }},
	{Name: "HostConfig.BlkioDeviceReadIOps", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.BlkioDeviceReadIOps) > 0 }},
	{Name: "HostConfig.BlkioDeviceWriteIOps", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.BlkioDeviceWriteIOps) > 0 }},
	{Name: "HostConfig.CpuPeriod", Verdict: Warned, Why: whyShape, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPUPeriod != 0 }},
	{Name: "HostConfig.CpuQuota", Verdict: Warned, Why: whyShape, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPUQuota != 0 }},
	{Name: "HostConfig.CpuRealtimePeriod", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPURealtimePeriod != 0 }},
	{Name: "HostConfig.CpuRealtimeRuntime", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPURealtimeRuntime != 0 }},
	{Name: "HostConfig.CpusetCpus", Verdict: Warned, Why: whyShape, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CpusetCpus != "" }},
	{Name: "HostConfig.CpusetMems", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CpusetMems != "" }},
	{Name: "HostConfig.Devices", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.Devices) > 0 }},
	{Name: "HostConfig.DeviceCgroupRules", Verdict: Refused, Why: whyKernel, set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.DeviceCgroupRules) > 0 }},
	{Name: "HostConfig.DeviceRequests", Verdict: Refused, Why: "Cloud Run functions have no GPUs or other devices to request", set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.DeviceRequests) > 0 }},
	{Name: "HostConfig.MemoryReservation", Verdict: Warned, Why: whyAlone, set: func(_ *container.Config, h *container.HostConfig) bool { return h.MemoryReservation != 0 }},
	{Name: "HostConfig.MemorySwap", Verdict: Warned, Why: "a function instance has no swap: memory beyond its limit is not available", set: func(_ *container.Config, h *container.HostConfig) bool {
		return h.MemorySwap != 0 && h.MemorySwap != h.Memory
	}},
	{Name: "HostConfig.MemorySwappiness", Verdict: Warned, Why: "a function instance has no swap to tune", set: func(_ *container.Config, h *container.HostConfig) bool {
		return h.MemorySwappiness != nil && *h.MemorySwappiness != -1
	}},
	{Name: "HostConfig.OomKillDisable", Verdict: Warned, Why: "the OOM killer of a function instance cannot be disabled (Docker on cgroup v2 ignores it too)", set: func(_ *container.Config, h *container.HostConfig) bool {
		return h.OomKillDisable != nil && *h.OomKillDisable
	}},
	{Name: "HostConfig.PidsLimit", Verdict: Refused, Why: whyCgroups, set: func(_ *container.Config, h *container.HostConfig) bool { return h.PidsLimit != nil && *h.PidsLimit > 0 }},
	{Name: "HostConfig.Ulimits", Verdict: Refused, Why: "setting ulimits is not carried out by Sockerless's agent yet", set: func(_ *container.Config, h *container.HostConfig) bool { return len(h.Ulimits) > 0 }},
	{Name: "HostConfig.CpuCount", Verdict: Refused, Why: whyWindows, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPUCount != 0 }},
	{Name: "HostConfig.CpuPercent", Verdict: Refused, Why: whyWindows, set: func(_ *container.Config, h *container.HostConfig) bool { return h.CPUPercent != 0 }},
	{Name: "HostConfig.IOMaximumIOps", Verdict: Refused, Why: whyWindows, set: func(_ *container.Config, h *container.HostConfig) bool { return h.IOMaximumIOps != 0 }},
	{Name: "HostConfig.IOMaximumBandwidth", Verdict: Refused, Why: whyWindows, set: func(_ *container.Config, h *container.HostConfig) bool { return h.IOMaximumBandwidth != 0 }},
}

// Options returns the table, for documentation and tests.
func Options() []Option { return slices.Clone(options) }

// checkOptions applies the table to a create request: the first refused
// option set is a 400 naming it; warned options set become warnings.
func checkOptions(cfg *container.Config, hc *container.HostConfig) (warnings []string, err error) {
	for _, o := range options {
		if o.set == nil || !o.set(cfg, hc) {
			continue
		}
		switch o.Verdict {
		case Refused:
			return nil, Errorf(KindInvalid, "%s is not supported by Sockerless: %s", o.Name, o.Why)
		case Warned:
			warnings = append(warnings, fmt.Sprintf("%s: %s", o.Name, o.Why))
		}
	}
	if err := checkRuntime(hc.Runtime); err != nil {
		return nil, err
	}
	if err := checkLogDriver(hc.LogConfig.Type); err != nil {
		return nil, err
	}
	return warnings, nil
}

// defaultRuntime is the name inspect shows as the container's runtime,
// Docker's default one: the only one a request may name.
const defaultRuntime = "runc"

func checkRuntime(name string) error {
	if name != "" && name != defaultRuntime {
		return Errorf(KindInvalid, "Unknown runtime specified %s", name)
	}
	return nil
}

// Log drivers. Output is always kept in the store (docker logs, attach);
// the drivers that keep it on the Docker host are carried out that way,
// "none" refuses docker logs as Docker does, and drivers that ship output
// elsewhere are refused.
var (
	keptLogDrivers    = []string{"json-file", "local", "none"}
	shippedLogDrivers = []string{"syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"}
)

func checkLogDriver(name string) error {
	switch {
	case name == "" || slices.Contains(keptLogDrivers, name):
		return nil
	case slices.Contains(shippedLogDrivers, name):
		return Errorf(KindInvalid, "HostConfig.LogConfig: the %s log driver is not supported by Sockerless: output is kept in the control plane's store (json-file, local or none)", name)
	}
	return Errorf(KindInvalid, "error looking up logging plugin %s: plugin %q not found", name, name)
}

// logsReadable reports whether docker logs can read c's output: not with
// the "none" driver (Docker's 501).
func logsReadable(c *Container) error {
	if c.HostConfig != nil && strings.EqualFold(c.HostConfig.LogConfig.Type, "none") {
		return Errorf(KindNotImplemented, "configured logging driver does not support reading")
	}
	return nil
}
