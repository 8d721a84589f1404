package volumes

import (
	"context"
	"net/url"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// Volume is the stored record of one volume.
type Volume struct {
	Namespace string            `json:"ns"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Created   time.Time         `json:"created"`
	// Anonymous marks a volume made for one container (-v /path, an
	// image's VOLUME, --mount without source): docker rm -v removes it.
	Anonymous bool `json:"anonymous,omitempty"`
	// Users are the containers using it, by ID, with when each began to.
	Users map[string]time.Time `json:"users,omitempty"`
	// Removing is set while its data is deleted; it takes no new users.
	Removing bool `json:"removing,omitempty"`
}

// Dir is the volume's data directory relative to the volume root.
func Dir(ns, name string) string { return url.PathEscape(ns) + "/" + name }

// Mountpoint is where the volume's data is in a function instance: the
// Mountpoint of docker volume inspect and the Source of docker inspect.
func Mountpoint(ns, name string) string { return proto.VolumesRoot + "/" + Dir(ns, name) }

// Store keeps volume records; the bolt and firestore stores implement it
// next to engine.Store, and volumetest is its conformance suite.
type Store interface {
	// GetVolume returns volume name of namespace ns. Returns
	// engine.ErrNotFound.
	GetVolume(ctx context.Context, ns, name string) (*Volume, error)
	// ListVolumes returns the namespace's volumes, by name.
	ListVolumes(ctx context.Context, ns string) ([]*Volume, error)
	// UpdateVolume reads volume name of ns (nil if absent), calls fn on it
	// and stores what fn returns (nothing if nil), in one transaction; fn
	// may run more than once. An error from fn aborts and is returned as
	// is. Returns what is stored afterwards.
	UpdateVolume(ctx context.Context, ns, name string, fn func(*Volume) (*Volume, error)) (*Volume, error)
	// DeleteVolume reads volume name of ns, calls check on it and deletes
	// it if check returns nil, in one transaction; check's error is
	// returned as is. Returns engine.ErrNotFound.
	DeleteVolume(ctx context.Context, ns, name string, check func(*Volume) error) error
}

// Data is the volumes' shared file system as the control plane reaches it.
type Data interface {
	// Remove deletes dir (relative to the volume root) and everything in
	// it; a dir that is not there is no error.
	Remove(ctx context.Context, dir string) error
	// Size returns the bytes of the files under dir.
	Size(ctx context.Context, dir string) (int64, error)
}
