package engine

import (
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/sockerless/sockerless/agent/proto"
)

// MountDockerSocket is a bind of the client's Docker socket into the
// container (-v /var/run/docker.sock:/var/run/docker.sock): the agent
// serves the Docker API there, as the container's namespace (DESIGN.md
// "The network plane"). docker inspect shows it as a bind.
const MountDockerSocket = proto.MountDockerSocket

// DockerSocketPaths are where a Docker client finds its daemon by
// default; a bind of one of them is a bind of the Docker socket whichever
// client sent it.
var DockerSocketPaths = []string{"/var/run/docker.sock", "/run/docker.sock"}

// isDockerSocket reports whether a bind's source is a Docker socket (the
// Docker API served inside the container, not a file synced): a default
// path, any file named docker.sock (Docker Desktop's ~/.docker/run, a
// rootless daemon's /run/user/UID), or one of the client's own
// (CreateRequest.DockerSockets).
func isDockerSocket(src string, own []string) bool {
	if !path.IsAbs(src) {
		return false
	}
	src = path.Clean(src)
	return slices.Contains(DockerSocketPaths, src) || path.Base(src) == "docker.sock" || slices.Contains(own, src)
}

// splitDockerSockets takes the binds of a Docker socket out of hc's Binds
// and Mounts: they become MountDockerSocket mounts, and the returned copy
// of hc holds the rest for resolveMounts.
func splitDockerSockets(hc *container.HostConfig, own []string) (*container.HostConfig, []Mount, error) {
	var out []Mount
	rest := *hc
	rest.Binds, rest.Mounts = nil, nil
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 || !isDockerSocket(parts[0], own) {
			rest.Binds = append(rest.Binds, b)
			continue
		}
		m := Mount{Type: MountDockerSocket, Source: parts[0], Destination: parts[1], RW: true}
		if len(parts) == 3 {
			m.Mode = parts[2]
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					m.RW = false
				case "rw", "z", "Z", "cached", "delegated", "consistent", "private", "rprivate", "shared", "rshared", "slave", "rslave":
				default:
					return nil, nil, Errorf(KindInvalid, "invalid mode: %s", parts[2])
				}
			}
		}
		out = append(out, m)
	}
	for _, spec := range hc.Mounts {
		if spec.Type != mount.TypeBind || !isDockerSocket(spec.Source, own) {
			rest.Mounts = append(rest.Mounts, spec)
			continue
		}
		out = append(out, Mount{Type: MountDockerSocket, Source: spec.Source, Destination: spec.Target, RW: !spec.ReadOnly})
	}
	for i := range out {
		if !path.IsAbs(out[i].Destination) {
			return nil, nil, Errorf(KindInvalid, "invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", out[i].Destination)
		}
		out[i].Destination = path.Clean(out[i].Destination)
		if out[i].Destination == "/" {
			return nil, nil, Errorf(KindInvalid, "invalid specification: destination can't be '/'")
		}
		out[i].Source = path.Clean(out[i].Source)
	}
	return &rest, out, nil
}

// mergeSocketMounts adds the Docker socket mounts to ms, refusing a
// destination taken twice, and keeps ms sorted by destination.
func mergeSocketMounts(ms, socks []Mount) ([]Mount, error) {
	if len(socks) == 0 {
		return ms, nil
	}
	taken := map[string]bool{}
	for _, m := range ms {
		taken[m.Destination] = true
	}
	for _, m := range socks {
		if taken[m.Destination] {
			return nil, Errorf(KindInvalid, "Duplicate mount point: %s", m.Destination)
		}
		taken[m.Destination] = true
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Mount) int { return strings.Compare(a.Destination, b.Destination) })
	return ms, nil
}

// DockerSockets are the destinations of c's Docker socket binds: where a
// client inside c finds its daemon, so a bind of one of them made through
// it is a Docker socket bind too.
func DockerSockets(c *Container) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Type == MountDockerSocket {
			out = append(out, m.Destination)
		}
	}
	return out
}

// socketMountPoint is a Docker socket bind as docker inspect shows it.
func socketMountPoint(m Mount) container.MountPoint {
	return container.MountPoint{Type: mount.TypeBind, Source: m.Source, Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: mount.PropagationRPrivate}
}
