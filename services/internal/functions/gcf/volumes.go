package gcf

import (
	"cloud.google.com/go/run/apiv2/runpb"

	"github.com/sockerless/sockerless/agent/proto"
)

// volumeName names the shared volume in every function's service.
const volumeName = "sockerless-volumes"

// Volumes is the deployment's shared file system for docker volumes
// (DESIGN.md "The storage plane"), mounted at proto.VolumesRoot in every
// function's Cloud Run service: a Cloud Storage bucket, or an NFS share
// (Filestore) reached through Direct VPC egress.
type Volumes struct {
	// Bucket is the Cloud Storage bucket (Cloud Run mounts it with
	// gcsfuse); MountOptions are gcsfuse flags.
	Bucket       string
	MountOptions []string
	// NFSServer and NFSPath locate the NFS export instead of a bucket.
	NFSServer, NFSPath string
	// Network and Subnetwork carry NFS traffic (Direct VPC egress).
	Network, Subnetwork string
}

// DefaultMountOptions are the gcsfuse flags of a bucket volume: no stat
// or type cache, so a file one container writes is seen at once by
// containers on other instances (Cloud Run caches for 60 s by default),
// and directories that exist only as object prefixes show.
var DefaultMountOptions = []string{"metadata-cache-ttl-secs=0", "implicit-dirs"}

// apply mounts the volume in the revision template t, on the second
// generation execution environment: the agent bind-mounts volume
// directories and makes tmpfs mounts, which gen2 (a microVM with full
// Linux compatibility) allows its root user and gen1 (gVisor) does not
// promise.
func (v *Volumes) apply(t *runpb.RevisionTemplate) {
	t.ExecutionEnvironment = runpb.ExecutionEnvironment_EXECUTION_ENVIRONMENT_GEN2
	vol := &runpb.Volume{Name: volumeName}
	if v.Bucket != "" {
		opts := v.MountOptions
		if opts == nil {
			opts = DefaultMountOptions
		}
		vol.VolumeType = &runpb.Volume_Gcs{Gcs: &runpb.GCSVolumeSource{Bucket: v.Bucket, MountOptions: opts}}
	} else {
		vol.VolumeType = &runpb.Volume_Nfs{Nfs: &runpb.NFSVolumeSource{Server: v.NFSServer, Path: v.NFSPath}}
		if v.Network != "" {
			t.VpcAccess = &runpb.VpcAccess{
				Egress:            runpb.VpcAccess_PRIVATE_RANGES_ONLY,
				NetworkInterfaces: []*runpb.VpcAccess_NetworkInterface{{Network: v.Network, Subnetwork: v.Subnetwork}},
			}
		}
	}
	vols := []*runpb.Volume{vol}
	for _, o := range t.GetVolumes() {
		if o.GetName() != volumeName {
			vols = append(vols, o)
		}
	}
	t.Volumes = vols
	c := t.Containers[0]
	mounts := []*runpb.VolumeMount{{Name: volumeName, MountPath: proto.VolumesRoot}}
	for _, m := range c.GetVolumeMounts() {
		if m.GetName() != volumeName {
			mounts = append(mounts, m)
		}
	}
	c.VolumeMounts = mounts
}
