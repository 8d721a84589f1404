package run

import (
	"path"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Volume kinds of a VolumeMount.
const (
	VolumeGCS = "gcs"
	VolumeNFS = "nfs"
)

// VolumeMount is a Cloud Run volume mounted into a revision's container.
type VolumeMount struct {
	// Path is where the container sees it (volume_mounts[].mount_path).
	Path string
	// Kind is VolumeGCS or VolumeNFS.
	Kind string
	// Bucket names a Cloud Storage volume's bucket.
	Bucket string
	// Server and Export locate an NFS volume's share.
	Server, Export string
	ReadOnly       bool
	// Options are a Cloud Storage volume's mount options (gcsfuse flags).
	Options []string
}

// volumeMounts validates the template's volumes and the container's
// mounts of them as Cloud Run does: names unique, every mount naming a
// volume, mount paths absolute, not under /dev, /proc or /sys, and not
// nested; NFS needs the second generation execution environment.
func volumeMounts(t *runpb.RevisionTemplate, c *runpb.Container) ([]VolumeMount, error) {
	byName := map[string]*runpb.Volume{}
	for _, v := range t.GetVolumes() {
		if v.GetName() == "" {
			return nil, status.Error(codes.InvalidArgument, "service.template.volumes: name is required")
		}
		if byName[v.GetName()] != nil {
			return nil, status.Errorf(codes.InvalidArgument, "service.template.volumes: duplicate volume name %q", v.GetName())
		}
		byName[v.GetName()] = v
	}
	var out []VolumeMount
	for _, m := range c.GetVolumeMounts() {
		v := byName[m.GetName()]
		if v == nil {
			return nil, status.Errorf(codes.InvalidArgument, "service.template.containers[0].volume_mounts: no volume named %q", m.GetName())
		}
		p := m.GetMountPath()
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return nil, status.Errorf(codes.InvalidArgument, "volume mount path %q must be an absolute, clean path other than /", p)
		}
		for _, bad := range []string{"/dev", "/proc", "/sys"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				return nil, status.Errorf(codes.InvalidArgument, "volume mount path %q: mounting at %s or below is not allowed", p, bad)
			}
		}
		for _, o := range out {
			if strings.HasPrefix(p+"/", o.Path+"/") || strings.HasPrefix(o.Path+"/", p+"/") {
				return nil, status.Errorf(codes.InvalidArgument, "volume mount paths %q and %q are nested", o.Path, p)
			}
		}
		if m.GetSubPath() != "" {
			return nil, status.Error(codes.Unimplemented, "gcpsim: volume mount sub_path is not supported")
		}
		vm := VolumeMount{Path: p}
		switch src := v.GetVolumeType().(type) {
		case *runpb.Volume_Gcs:
			if src.Gcs.GetBucket() == "" {
				return nil, status.Errorf(codes.InvalidArgument, "volume %q: gcs.bucket is required", v.GetName())
			}
			vm.Kind, vm.Bucket, vm.ReadOnly, vm.Options = VolumeGCS, src.Gcs.GetBucket(), src.Gcs.GetReadOnly(), src.Gcs.GetMountOptions()
		case *runpb.Volume_Nfs:
			if src.Nfs.GetServer() == "" || !path.IsAbs(src.Nfs.GetPath()) {
				return nil, status.Errorf(codes.InvalidArgument, "volume %q: nfs.server and an absolute nfs.path are required", v.GetName())
			}
			if t.GetExecutionEnvironment() != runpb.ExecutionEnvironment_EXECUTION_ENVIRONMENT_GEN2 {
				return nil, status.Errorf(codes.InvalidArgument, "volume %q: NFS volumes need the second generation execution environment", v.GetName())
			}
			vm.Kind, vm.Server, vm.Export, vm.ReadOnly = VolumeNFS, src.Nfs.GetServer(), path.Clean(src.Nfs.GetPath()), src.Nfs.GetReadOnly()
		default:
			return nil, status.Errorf(codes.Unimplemented, "gcpsim: volume %q: only gcs and nfs volumes are supported", v.GetName())
		}
		out = append(out, vm)
	}
	return out, nil
}
