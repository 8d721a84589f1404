package instances

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

// BucketDir is the host directory holding Cloud Storage bucket's objects
// (gcpsim's storage API serves the same tree).
func BucketDir(storageDir, bucket string) string {
	return filepath.Join(storageDir, "gcs", url.PathEscape(bucket))
}

// NFSDir is the host directory standing for an NFS server's export.
func NFSDir(storageDir, server, export string) string {
	return filepath.Join(storageDir, "nfs", url.PathEscape(server), filepath.Clean(export))
}

// mountCaps is what the second generation execution environment adds to
// docker's default capabilities: mounting (Google's tutorials mount NFS
// and gcsfuse from inside gen2 containers).
var mountCaps = []string{"CAP_SYS_ADMIN"}

// applyRevision adds what the revision asks beyond a plain container to
// spec: the gen2 environment's privileges and the Cloud Run volumes, each
// a bind of its host directory.
func (i *instance) applyRevision(spec *ociSpec) error {
	if i.rev.Gen2 {
		c := &spec.Process.Capabilities
		c.Bounding = append(append([]string{}, c.Bounding...), mountCaps...)
		if len(c.Effective) > 0 { // root: a non-root user gets none, as docker
			c.Effective = append(append([]string{}, c.Effective...), mountCaps...)
			c.Permitted = append(append([]string{}, c.Permitted...), mountCaps...)
		}
	}
	for _, v := range i.rev.Volumes {
		var dir string
		switch v.Kind {
		case run.VolumeGCS:
			dir = BucketDir(i.m.cfg.StorageDir, v.Bucket)
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("Cloud Storage volume: bucket %s does not exist", v.Bucket)
			}
		case run.VolumeNFS:
			dir = NFSDir(i.m.cfg.StorageDir, v.Server, v.Export)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("NFS volume %s:%s: %w", v.Server, v.Export, err)
			}
		default:
			return fmt.Errorf("volume kind %q", v.Kind)
		}
		mode := "rw"
		if v.ReadOnly {
			mode = "ro"
		}
		spec.Mounts = append(spec.Mounts, ociMount{Destination: v.Path, Type: "bind", Source: dir, Options: []string{"rbind", mode}})
	}
	return nil
}
