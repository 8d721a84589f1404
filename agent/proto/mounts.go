package proto

// The storage plane (DESIGN.md "The storage plane"). Every function's
// Cloud Run service has the deployment's shared file system (a Cloud
// Storage bucket or an NFS share) mounted at VolumesRoot, one directory
// per volume. Before the agent dials back it applies the invocation's
// Mounts: a volume's directory is bind-mounted at its destination (read
// only with ReadOnly, filled from the image first if empty, unless
// NoCopy), a tmpfs is mounted with its options; then VolumesRoot itself
// is covered, so the container sees only its own volumes.

// VolumesRoot is where the deployment's shared volume file system is
// mounted in every function instance.
const VolumesRoot = "/.sockerless/volumes"

// Mount kinds (Mount.Type).
const (
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
	// MountDockerSocket is a bind of the client's Docker socket
	// (/var/run/docker.sock): no kernel mount, the agent serves a unix
	// socket at Destination and carries each connection to the control
	// plane as a MeshDocker stream (DESIGN.md "The network plane").
	MountDockerSocket = "docker-socket"
	// MountBind bind-mounts a host bind's staging directory (or the one
	// file in it) at its destination, once the bind's initial copy is in
	// (package bindsync); the agent asks for it after the invocation's
	// mounts, so it never covers the volume root.
	MountBind = "bind"
)

// BindsRoot holds the staging directories of a container's host bind
// mounts in its instance, one per bind (BindsRoot/<Bind.Index>).
const BindsRoot = "/.sockerless/binds"

// Bind is a host bind mount of the container (docker run -v /host:/ctr):
// the agent opens a MeshBind stream for it (MeshOpen.Port = Index), and
// the client's machine syncs the source with the staging directory.
type Bind struct {
	// Index is the bind's number among the container's binds.
	Index       int    `json:"index"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
}

// Mount is one volume or tmpfs mount of the container.
type Mount struct {
	Type string `json:"type"`
	// Source is a volume's directory relative to VolumesRoot; the agent
	// creates it if missing.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	// NoCopy skips the copy-up of the image's files at Destination into
	// an empty volume.
	NoCopy bool `json:"noCopy,omitempty"`
	// Options are a tmpfs's mount options ("size=64m,mode=1777,noexec").
	Options string `json:"options,omitempty"`
}
