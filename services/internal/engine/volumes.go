package engine

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
)

// mounts resolves and acquires the mounts of container id about to be
// created: its volumes exist and count it as a user when this returns.
func (e *Engine) mounts(ctx context.Context, id string, req CreateRequest, img *Image) ([]Mount, error) {
	hc := req.HostConfig
	if hc == nil { // Config.Volumes and the image's VOLUMEs still count
		hc = &container.HostConfig{}
	}
	imgCfg := img.Config
	if imgCfg == nil {
		imgCfg = &container.Config{}
	}
	hc, socks, err := splitDockerSockets(hc, req.DockerSockets)
	if err != nil {
		return nil, err
	}
	ms, err := resolveMounts(req.Config, hc, imgCfg, func(ref string) (*Container, error) {
		return e.Container(ctx, req.Namespace, ref)
	})
	if err == nil {
		ms, err = mergeSocketMounts(ms, socks)
	}
	if err != nil || len(ms) == 0 {
		return ms, err
	}
	if err := checkBinds(ms, req.Client); err != nil {
		return nil, err
	}
	if !hasVolume(ms) {
		return ms, nil
	}
	if d := hc.VolumeDriver; d != "" && d != "local" {
		return nil, Errorf(KindInvalid, "volume driver %q (HostConfig.VolumeDriver) is not supported by Sockerless: only the local driver, whose volumes live on the deployment's bucket or NFS share", d)
	}
	if e.cfg.Volumes == nil {
		return nil, Errorf(KindInvalid, "volumes are not configured on this control plane")
	}
	return e.cfg.Volumes.Acquire(ctx, req.Namespace, id, ms)
}

// releaseMounts undoes mounts for a container that was not stored.
func (e *Engine) releaseMounts(c *Container) {
	e.releaseVolumes(context.WithoutCancel(e.ctx), c, true)
}

// releaseVolumes drops c from its volumes' users, removing its anonymous
// volumes if asked (docker rm -v, --rm).
func (e *Engine) releaseVolumes(ctx context.Context, c *Container, anonymous bool) {
	if e.cfg.Volumes == nil || !hasVolume(c.Mounts) {
		return
	}
	if err := e.cfg.Volumes.Release(ctx, c.Namespace, c.ID, c.Mounts, anonymous); err != nil {
		e.log.Error("release volumes", "container", c.ID, "err", err)
	}
}

func hasVolume(ms []Mount) bool {
	for _, m := range ms {
		if m.Type == MountVolume {
			return true
		}
	}
	return false
}

// invocationMounts is what the agent mounts for c before it dials back;
// host binds are mounted at start, once synced (Start.Binds).
func invocationMounts(c *Container) []proto.Mount {
	var out []proto.Mount
	for _, m := range c.Mounts {
		if m.Type == MountBind {
			continue
		}
		pm := proto.Mount{Type: m.Type, Destination: m.Destination, ReadOnly: !m.RW}
		switch m.Type {
		case MountVolume:
			pm.Source, pm.NoCopy = m.Dir, m.NoCopy
		case MountTmpfs:
			pm.Options = m.TmpfsOptions
		}
		out = append(out, pm)
	}
	return out
}

// usesVolume is docker ps's volume filter: a volume's name or a mount's
// destination.
func usesVolume(c *Container, v string) bool {
	for _, m := range c.Mounts {
		if m.Type == MountVolume && m.Name == v || m.Destination == v {
			return true
		}
	}
	return false
}

// MatchLabels applies docker's label filters ("k", "k=v") to labels;
// want=false is label!= (none may hold).
func MatchLabels(filters []string, labels map[string]string, want bool) bool {
	return matchLabels(filters, labels, want)
}

// AnyOf is docker's rule for the values of one filter key: true if vals
// is empty or ok holds for one of them.
func AnyOf(vals []string, ok func(string) bool) bool { return anyOf(vals, ok) }

// SortedKeys returns m's keys in order.
func SortedKeys[V any](m map[string]V) []string { return sortedKeys(m) }
