# The control plane. One instance, always on, CPU always allocated: the hub
# holds every agent's WebSocket and streams are not relayed between
# instances yet; state is in Firestore, so a restart or redeploy loses
# nothing. deploy/cloudrun-service.yaml is the same service without
# Terraform; a test keeps the two in agreement.
resource "google_cloud_run_v2_service" "controlplane" {
  project             = var.project_id
  name                = var.name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL" # docker clients and function agents come over the internet
  deletion_protection = false

  template {
    service_account                  = google_service_account.controlplane.email
    timeout                          = "3600s" # a stream (attach, logs -f, an agent) is one request of up to an hour
    session_affinity                 = true
    max_instance_request_concurrency = var.container_concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = 1
      max_instance_count = 1
    }

    # With an NFS share for volumes, the control plane mounts it too (to
    # delete and measure volume data) and reaches it through the VPC.
    dynamic "volumes" {
      for_each = var.volume_nfs == null ? [] : [var.volume_nfs]
      content {
        name = "volumes"
        nfs {
          server = volumes.value.server
          path   = volumes.value.path
        }
      }
    }
    dynamic "vpc_access" {
      for_each = var.volume_nfs == null ? [] : [var.volume_nfs]
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = vpc_access.value.network
          subnetwork = vpc_access.value.subnetwork
        }
      }
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = var.memory
        }
        cpu_idle          = false # CPU always allocated
        startup_cpu_boost = true
      }

      env {
        name  = "SOCKERLESS_STORE"
        value = "firestore"
      }
      env {
        name  = "SOCKERLESS_GCP_PROJECT"
        value = var.project_id
      }
      env {
        name  = "SOCKERLESS_GCP_REGION"
        value = var.region
      }
      env {
        name  = "SOCKERLESS_SERVICE_ACCOUNT"
        value = google_service_account.functions.email
      }
      env {
        name  = "SOCKERLESS_IMAGE_REPO"
        value = local.wrapped_image_repo
      }
      env {
        name  = "SOCKERLESS_REGISTRY_MIRROR"
        value = "docker.io=${local.dockerhub_mirror}"
      }
      env {
        name  = "SOCKERLESS_CALLBACK_URL"
        value = local.callback_url
      }
      env {
        name  = "SOCKERLESS_LOG_LEVEL"
        value = var.log_level
      }
      env {
        name  = "SOCKERLESS_GOOGLE_AUDIENCE"
        value = var.google_identity ? local.google_audience : ""
      }
      env {
        name  = "SOCKERLESS_VOLUME_BUCKET"
        value = local.volume_bucket
      }
      env {
        name  = "SOCKERLESS_VOLUME_NFS"
        value = local.volume_nfs
      }
      env {
        name  = "SOCKERLESS_VOLUME_NFS_DIR"
        value = local.volume_nfs_dir
      }
      env {
        name  = "SOCKERLESS_VOLUME_VPC_NETWORK"
        value = var.volume_nfs == null ? "" : var.volume_nfs.network
      }
      env {
        name  = "SOCKERLESS_VOLUME_VPC_SUBNET"
        value = var.volume_nfs == null ? "" : var.volume_nfs.subnetwork
      }
      dynamic "volume_mounts" {
        for_each = var.volume_nfs == null ? [] : [1]
        content {
          name       = "volumes"
          mount_path = local.volume_nfs_dir
        }
      }
      env {
        name = "SOCKERLESS_TOKEN"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.admin_token.secret_id
            version = google_secret_manager_secret_version.admin_token.version
          }
        }
      }
    }
  }

  lifecycle {
    # cloudbuild.yaml deploys new images; Terraform owns everything else.
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.apis,
    google_firestore_database.default,
    google_secret_manager_secret_iam_member.controlplane_reads_token,
    google_project_iam_member.controlplane,
  ]
}

# Requests reach Sockerless without Google IAM: it checks its own bearer
# token (or a member's Google ID token) on every request, and agents
# present a per-container secret. With public = false Cloud Run demands a
# Google ID token of a run.invoker (var.iam_invokers) on every request,
# agents' callbacks included, which they do not send yet: see the README,
# "Google identity".
resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.public ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.controlplane.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# With public = false: who may call the service through Cloud Run IAM.
resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = var.public ? toset([]) : toset(var.iam_invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.controlplane.name
  role     = "roles/run.invoker"
  member   = each.value
}
