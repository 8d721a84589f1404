package engine

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/sockerless/sockerless/agent/proto"
)

// Mount types of a container's Mount.
const (
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
	// MountBind is a host bind mount: a path on the client's machine,
	// synced into the container's instance by the client side (the
	// forwarder, or the --dev control plane; package bindsync).
	MountBind = "bind"
)

// Mount is one of a container's volume or tmpfs mounts, resolved at
// create from Binds, Mounts, Tmpfs, Volumes, VolumesFrom and the image's
// VOLUMEs (DESIGN.md "The storage plane").
type Mount struct {
	Type string `json:"type"`
	// Name is the volume's name (MountVolume).
	Name string `json:"name,omitempty"`
	// Source is what docker inspect shows as the mount's Source: the
	// volume's Mountpoint (set by Volumes.Acquire), or a bind's path on
	// the client's machine.
	Source string `json:"source,omitempty"`
	// CreateSource makes a bind's missing source a directory, as docker
	// does for -v (not for --mount type=bind).
	CreateSource bool `json:"createSource,omitempty"`
	// Dir is the volume's data directory, relative to the volume root
	// that every function instance has mounted. Set by Volumes.Acquire.
	Dir         string `json:"dir,omitempty"`
	Destination string `json:"destination"`
	// Mode is the mode string docker inspect shows ("z", "ro", "").
	Mode string `json:"mode,omitempty"`
	RW   bool   `json:"rw"`
	// NoCopy skips docker's copy-up of the image's files into an empty
	// volume (volume-nocopy).
	NoCopy bool `json:"noCopy,omitempty"`
	// Anonymous marks a volume made for this container: docker rm -v
	// and --rm remove it.
	Anonymous bool `json:"anonymous,omitempty"`
	// Labels are set on a volume created by this mount (--mount
	// volume-label=…).
	Labels map[string]string `json:"labels,omitempty"`
	// TmpfsOptions are the tmpfs's mount options ("size=64m,mode=1777,
	// noexec"), as --tmpfs takes them.
	TmpfsOptions string `json:"tmpfsOptions,omitempty"`
	// Unlisted mounts (--tmpfs) are not in inspect's Mounts, as docker.
	Unlisted bool `json:"unlisted,omitempty"`
}

// Volumes keeps volume records (package volumes). The engine acquires a
// container's volumes when it creates the container and releases them
// when it removes it; "in use" is what they record.
type Volumes interface {
	// Acquire records container id as a user of every volume in ms,
	// creating named volumes that do not exist yet and anonymous ones,
	// and returns ms with Dir and Source set. It returns a KindConflict
	// *Error for a volume being removed.
	Acquire(ctx context.Context, ns, id string, ms []Mount) ([]Mount, error)
	// Release drops container id from the users of its volumes; with
	// anonymous, the anonymous ones nobody else uses are removed, data
	// and all.
	Release(ctx context.Context, ns, id string, ms []Mount, anonymous bool) error
}

// volumeName is docker's rule for local volume names.
var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CheckVolumeName returns docker's error for a name that is no valid
// local volume name (op is "create" or the like, for the message).
func CheckVolumeName(op, name string) error {
	if len(name) == 1 {
		return Errorf(KindInvalid, "%s %s: volume name is too short, names should be at least two alphanumeric characters", op, name)
	}
	if !volumeName.MatchString(name) {
		return Errorf(KindInvalid, "%s %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", op, name, name)
	}
	return nil
}

// errRelativeBind is the answer to a bind source that is a path but not
// an absolute one (the docker CLI makes ./dir absolute; the API takes
// absolute paths only).
func errRelativeBind(src string) error {
	return Errorf(KindInvalid, "invalid bind source %q: a host path must be absolute", src)
}

// errNoBindClient is the answer to a host bind from a client with no
// process on its own machine to sync it.
func errNoBindClient(src string) error {
	return Errorf(KindInvalid, "bind mounts (%s) need the Sockerless forwarder (or the --dev control plane's unix socket): containers run on Cloud Run, which cannot see paths on your machine, and this client talks to the control plane directly; run the forwarder, or use a named volume (-v NAME:/path)", src)
}

// bindMount is the Mount of a host bind of src at dst.
func bindMount(src, dst string, ro, create bool, mode string) (Mount, error) {
	if isDockerSocket(src, nil) { // splitDockerSockets took them out before
		return Mount{}, Errorf(KindInvalid, "binding the Docker socket (%s) into a container is not supported yet", src)
	}
	return Mount{Type: MountBind, Source: path.Clean(src), Destination: dst, RW: !ro, Mode: mode, CreateSource: create}, nil
}

// checkBinds refuses host binds for a client with no process on its
// machine to sync them (client "": plain TCP to the control plane).
func checkBinds(ms []Mount, client string) error {
	for _, m := range ms {
		if m.Type == MountBind && client == "" {
			return errNoBindClient(m.Source)
		}
	}
	return nil
}

// Binds are c's host bind mounts as the agent syncs them, numbered in
// the order of c.Mounts (the number a MeshBind stream names).
func Binds(c *Container) []Mount {
	var out []Mount
	for _, m := range c.Mounts {
		if m.Type == MountBind {
			out = append(out, m)
		}
	}
	return out
}

func startBinds(c *Container) []proto.Bind {
	var out []proto.Bind
	for i, m := range Binds(c) {
		out = append(out, proto.Bind{Index: i, Destination: m.Destination, ReadOnly: !m.RW})
	}
	return out
}

// resolveMounts turns a create request's volume options into the
// container's mounts, sorted by destination, as docker resolves them:
// Binds and Mounts first, then VolumesFrom, then --tmpfs, then the
// container's and the image's VOLUMEs as anonymous volumes where nothing
// else is mounted. from finds a --volumes-from container.
func resolveMounts(cfg *container.Config, hc *container.HostConfig, img *container.Config, from func(ref string) (*Container, error)) ([]Mount, error) {
	var out []Mount
	taken := map[string]bool{}
	add := func(m Mount) error {
		if !path.IsAbs(m.Destination) {
			return Errorf(KindInvalid, "invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		if m.Destination == "/" {
			return Errorf(KindInvalid, "invalid specification: destination can't be '/'")
		}
		if taken[m.Destination] {
			return Errorf(KindInvalid, "Duplicate mount point: %s", m.Destination)
		}
		taken[m.Destination] = true
		out = append(out, m)
		return nil
	}
	for _, b := range hc.Binds {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, spec := range hc.Mounts {
		m, err := parseMountSpec(spec)
		if err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, ref := range hc.VolumesFrom {
		name, mode, _ := strings.Cut(ref, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, Errorf(KindInvalid, "invalid mode for volumes-from: %s", mode)
		}
		src, err := from(name)
		if err != nil {
			return nil, err
		}
		for _, m := range src.Mounts {
			if m.Type != MountVolume || taken[m.Destination] {
				continue
			}
			m.Anonymous, m.Labels, m.Mode = false, nil, ""
			switch mode {
			case "ro":
				m.RW = false
			case "rw":
				m.RW = true
			}
			if err := add(m); err != nil {
				return nil, err
			}
		}
	}
	for _, dst := range sortedKeys(hc.Tmpfs) {
		opts, err := tmpfsOptions(hc.Tmpfs[dst])
		if err != nil {
			return nil, err
		}
		if err := add(Mount{Type: MountTmpfs, Destination: dst, RW: true, TmpfsOptions: opts, Unlisted: true}); err != nil {
			return nil, err
		}
	}
	anon := map[string]struct{}{}
	for k := range img.Volumes {
		anon[k] = struct{}{}
	}
	for k := range cfg.Volumes {
		anon[k] = struct{}{}
	}
	for _, dst := range sortedKeys(anon) {
		if !path.IsAbs(dst) {
			return nil, Errorf(KindInvalid, "invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", dst)
		}
		if taken[path.Clean(dst)] {
			continue
		}
		if err := add(Mount{Type: MountVolume, Name: randomHex(32), Destination: dst, RW: true, Anonymous: true}); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, nil
}

// parseBind parses a Binds entry "src:dst[:mode]" naming a volume.
func parseBind(b string) (Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Mount{}, Errorf(KindInvalid, "invalid volume specification: '%s'", b)
	}
	src, dst := parts[0], parts[1]
	if path.IsAbs(src) {
		ro := false
		mode := ""
		if len(parts) == 3 {
			mode = parts[2]
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					ro = true
				case "rw", "z", "Z", "cached", "delegated", "consistent", "private", "rprivate", "shared", "rshared", "slave", "rslave":
				default:
					return Mount{}, Errorf(KindInvalid, "invalid mode: %s", parts[2])
				}
			}
		}
		return bindMount(src, dst, ro, true, mode)
	}
	if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "~") {
		return Mount{}, errRelativeBind(src)
	}
	if err := CheckVolumeName("create", src); err != nil {
		return Mount{}, err
	}
	m := Mount{Type: MountVolume, Name: src, Destination: dst, RW: true, Mode: "z"}
	if len(parts) == 3 {
		m.Mode = parts[2]
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				m.RW = false
			case "rw", "z", "Z", "cached", "delegated", "consistent", "private", "rprivate", "shared", "rshared", "slave", "rslave":
			case "nocopy":
				m.NoCopy = true
			default:
				return Mount{}, Errorf(KindInvalid, "invalid mode: %s", parts[2])
			}
		}
	}
	return m, nil
}

// parseMountSpec parses a --mount (HostConfig.Mounts) entry.
func parseMountSpec(spec mount.Mount) (Mount, error) {
	switch spec.Type {
	case mount.TypeVolume:
		m := Mount{Type: MountVolume, Name: spec.Source, Destination: spec.Target, RW: !spec.ReadOnly, Mode: "z"}
		if spec.Source == "" {
			m.Name, m.Anonymous, m.Mode = randomHex(32), true, ""
		} else if err := CheckVolumeName("create", spec.Source); err != nil {
			return Mount{}, err
		}
		if o := spec.VolumeOptions; o != nil {
			m.NoCopy = o.NoCopy
			m.Labels = o.Labels
			if d := o.DriverConfig; d != nil && d.Name != "" && d.Name != "local" {
				return Mount{}, Errorf(KindInvalid, "volume driver %q is not supported: Sockerless volumes use the local driver", d.Name)
			}
			if o.Subpath != "" {
				return Mount{}, Errorf(KindInvalid, "volume-subpath is not supported yet")
			}
		}
		if spec.BindOptions != nil || spec.TmpfsOptions != nil {
			return Mount{}, Errorf(KindInvalid, "invalid mount config for type \"volume\": only volume options may be given")
		}
		return m, nil
	case mount.TypeTmpfs:
		if spec.Source != "" {
			return Mount{}, Errorf(KindInvalid, "invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
		var opts []string
		if o := spec.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return Mount{}, Errorf(KindInvalid, "invalid mount config for type \"tmpfs\": invalid tmpfs size %d", o.SizeBytes)
			}
			if o.SizeBytes > 0 {
				opts = append(opts, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				opts = append(opts, "mode="+strconv.FormatUint(uint64(o.Mode.Perm()), 8))
			}
		}
		if spec.ReadOnly {
			opts = append(opts, "ro")
		}
		return Mount{Type: MountTmpfs, Destination: spec.Target, RW: !spec.ReadOnly, TmpfsOptions: strings.Join(opts, ",")}, nil
	case mount.TypeBind:
		if !path.IsAbs(spec.Source) {
			return Mount{}, errRelativeBind(spec.Source)
		}
		if spec.VolumeOptions != nil || spec.TmpfsOptions != nil {
			return Mount{}, Errorf(KindInvalid, "invalid mount config for type \"bind\": only bind options may be given")
		}
		if o := spec.BindOptions; o != nil && (o.CreateMountpoint || o.NonRecursive || o.ReadOnlyNonRecursive || o.ReadOnlyForceRecursive) {
			return Mount{}, Errorf(KindInvalid, "bind options other than propagation are not supported")
		}
		return bindMount(spec.Source, spec.Target, spec.ReadOnly, false, "")
	}
	return Mount{}, Errorf(KindInvalid, "mount type %q is not supported", spec.Type)
}

// tmpfsOptions checks --tmpfs options and returns them as the kernel
// takes them (sizes in bytes: docker accepts "64MB", tmpfs does not).
func tmpfsOptions(opts string) (string, error) {
	if opts == "" {
		return "", nil
	}
	var out []string
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "size":
			n, err := TmpfsSize(v)
			if err != nil {
				return "", Errorf(KindInvalid, "invalid tmpfs option %q: %v", o, err)
			}
			o = "size=" + strconv.FormatInt(n, 10)
		case "mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return "", Errorf(KindInvalid, "invalid tmpfs option %q", o)
			}
		case "nr_inodes", "uid", "gid":
			if _, err := units.RAMInBytes(v); err != nil {
				return "", Errorf(KindInvalid, "invalid tmpfs option %q", o)
			}
		case "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "strictatime", "nodiratime", "diratime":
		default:
			return "", Errorf(KindInvalid, "invalid tmpfs option %q", o)
		}
		out = append(out, o)
	}
	return strings.Join(out, ","), nil
}

// TmpfsSize parses a tmpfs size ("64m", "1g", "1048576") into bytes.
func TmpfsSize(v string) (int64, error) {
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("negative size %s", v)
	}
	return n, nil
}

// mergeVolumes is the container's Config.Volumes as docker inspect shows
// it: the image's VOLUMEs and the container's own.
func mergeVolumes(in, img map[string]struct{}) map[string]struct{} {
	if len(in) == 0 && len(img) == 0 {
		return in
	}
	out := map[string]struct{}{}
	for k := range img {
		out[k] = struct{}{}
	}
	for k := range in {
		out[k] = struct{}{}
	}
	return out
}

// MountPoints is c's Mounts as docker inspect shows them.
func MountPoints(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.Mounts {
		if m.Unlisted {
			continue
		}
		if m.Type == MountDockerSocket {
			out = append(out, socketMountPoint(m))
			continue
		}
		mp := container.MountPoint{Type: mount.Type(m.Type), Destination: m.Destination, Mode: m.Mode, RW: m.RW}
		switch m.Type {
		case MountVolume:
			mp.Name, mp.Source, mp.Driver = m.Name, m.Source, "local"
		case MountBind:
			mp.Source, mp.Propagation = m.Source, mount.PropagationRPrivate
		}
		out = append(out, mp)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
