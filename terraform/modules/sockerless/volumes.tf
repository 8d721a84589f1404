# Docker volumes (DESIGN.md "The storage plane"): directories on one shared
# file system that the control plane mounts into every function's Cloud
# Run service. By default a Cloud Storage bucket (cheap; no file locking,
# no atomic directory rename, last writer of a file wins); with
# var.volume_nfs an NFS share such as Filestore (POSIX), which the control
# plane mounts too, to delete volume data.

locals {
  volume_bucket = var.volume_nfs == null ? "${var.project_id}-${var.name}-volumes" : ""
  volume_nfs    = var.volume_nfs == null ? "" : "${var.volume_nfs.server}:${var.volume_nfs.path}"
  # Where the control plane mounts the NFS share (SOCKERLESS_VOLUME_NFS_DIR).
  volume_nfs_dir = var.volume_nfs == null ? "" : "/mnt/sockerless-volumes"
}

resource "google_storage_bucket" "volumes" {
  count = var.volume_nfs == null ? 1 : 0

  project                     = var.project_id
  name                        = local.volume_bucket
  location                    = var.region # next to the functions: no egress cost, lowest latency
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.delete_volumes_on_destroy

  depends_on = [google_project_service.apis]
}

# Functions read and write volume data (Cloud Run mounts the bucket as
# their service account); the control plane lists and deletes it (docker
# volume rm, prune, system df).
resource "google_storage_bucket_iam_member" "volumes" {
  for_each = var.volume_nfs == null ? {
    functions    = local.functions
    controlplane = local.controlplane
  } : {}

  bucket = google_storage_bucket.volumes[0].name
  role   = "roles/storage.objectUser"
  member = each.value
}
