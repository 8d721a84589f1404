# Three identities, each with only what it needs:
#   control plane  manages and invokes the functions, pushes wrapped images,
#                  uses Firestore, writes and reads logs;
#   functions      run the user's containers: nothing but logging;
#   build          cloudbuild.yaml: pushes the control plane image and
#                  deploys a new revision of this one service.

resource "google_service_account" "controlplane" {
  project      = var.project_id
  account_id   = "${var.name}-cp"
  display_name = "Sockerless control plane"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "functions" {
  project      = var.project_id
  account_id   = "${var.name}-fn"
  display_name = "Sockerless functions (user containers)"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "Sockerless build and deploy (cloudbuild.yaml)"

  depends_on = [google_project_service.apis]
}

locals {
  controlplane = "serviceAccount:${google_service_account.controlplane.email}"
  functions    = "serviceAccount:${google_service_account.functions.email}"
  build        = "serviceAccount:${google_service_account.build.email}"

  # Functions are created at run time, one per image, so these roles are
  # granted on the project: no narrower resource exists when they are given.
  controlplane_project_roles = {
    functions = "roles/cloudfunctions.developer" # create, update, delete the functions
    run       = "roles/run.developer"            # point each function's Cloud Run service at its wrapped image
    invoker   = "roles/run.invoker"              # invoke the functions (ID tokens come from the metadata server)
    firestore = "roles/datastore.user"           # the store
    logwriter = "roles/logging.logWriter"        # its own logs
    logviewer = "roles/logging.viewer"           # docker logs of a container whose agent never called back
  }
}

resource "google_project_iam_member" "controlplane" {
  for_each = local.controlplane_project_roles

  project = var.project_id
  role    = each.value
  member  = local.controlplane
}

# Creating a function that runs as the functions account, and updating its
# service, is acting as that account: allowed on that one account only.
resource "google_service_account_iam_member" "controlplane_uses_functions_account" {
  service_account_id = google_service_account.functions.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.controlplane
}

resource "google_artifact_registry_repository_iam_member" "controlplane_pushes_wrapped" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.wrapped.name
  role       = "roles/artifactregistry.writer"
  member     = local.controlplane
}

resource "google_artifact_registry_repository_iam_member" "controlplane_reads_dockerhub" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.dockerhub.name
  role       = "roles/artifactregistry.reader"
  member     = local.controlplane
}

resource "google_project_iam_member" "functions_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.functions
}

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.build
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_controlplane" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.controlplane.name
  role       = "roles/artifactregistry.writer"
  member     = local.build
}

# Deploying a revision that runs as the control plane account.
resource "google_service_account_iam_member" "build_uses_controlplane_account" {
  service_account_id = google_service_account.controlplane.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.build
}

resource "google_cloud_run_v2_service_iam_member" "build_deploys" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.controlplane.name
  role     = "roles/run.developer"
  member   = local.build
}

# Where gcloud builds submit stages the source for the build account.
resource "google_storage_bucket" "build" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-build"
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.build.name
  role   = "roles/storage.objectViewer"
  member = local.build
}

# Cloud Functions builds every function (from the stub source) as the
# project's default build account, the Compute Engine default service
# account, and the creator must be allowed to act as it. Where an
# organization policy stops Google's automatic grants, that account has no
# role at all and every function build fails; these grants make it work.
# Turn them off when the project already grants them, or when the
# default compute account holds broad roles (Editor) that the control plane
# should not be able to act as.
locals {
  default_build_account = "serviceAccount:${data.google_project.this.number}-compute@developer.gserviceaccount.com"
}

resource "google_project_iam_member" "default_build_account_builds" {
  count = var.grant_default_build_account ? 1 : 0

  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = local.default_build_account

  depends_on = [google_project_service.apis]
}

resource "google_service_account_iam_member" "controlplane_uses_default_build_account" {
  count = var.grant_default_build_account ? 1 : 0

  service_account_id = "projects/${var.project_id}/serviceAccounts/${data.google_project.this.number}-compute@developer.gserviceaccount.com"
  role               = "roles/iam.serviceAccountUser"
  member             = local.controlplane

  depends_on = [google_project_service.apis]
}
