# Sockerless on Google Cloud: the APIs, Firestore, Artifact Registry, the
# service accounts and the control plane's Cloud Run service. See the
# repository README, "Deploy to Google Cloud".

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  registry_host      = "${var.region}-docker.pkg.dev"
  firestore_location = var.firestore_location != "" ? var.firestore_location : var.region

  # The control plane's own URL, needed inside its own definition (the
  # callback URL agents dial). Reading google_cloud_run_v2_service.uri there
  # would be a cycle, so this is Cloud Run's deterministic URL format,
  # https://SERVICE-PROJECT_NUMBER.REGION.run.app, which every service gets
  # besides its older hash-style URL (output service_url).
  service_host = "${var.name}-${data.google_project.this.number}.${var.region}.run.app"
  callback_url = "wss://${local.service_host}"
  # The audience of members' Google ID tokens (forwarder --google
  # --google-audience).
  google_audience = "https://${local.service_host}"

  controlplane_image_repo = "${local.registry_host}/${var.project_id}/${google_artifact_registry_repository.controlplane.repository_id}"
  wrapped_image_repo      = "${local.registry_host}/${var.project_id}/${google_artifact_registry_repository.wrapped.repository_id}/wrapped"
  dockerhub_mirror        = "https://${local.registry_host}/${var.project_id}/${google_artifact_registry_repository.dockerhub.repository_id}"

  forwarder_socket = "$HOME/.sockerless.sock"
  token_command    = "gcloud secrets versions access latest --secret=${google_secret_manager_secret.admin_token.secret_id} --project=${var.project_id}"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "firestore.googleapis.com",
    "artifactregistry.googleapis.com",
    "logging.googleapis.com",
    "cloudbuild.googleapis.com",
    "iamcredentials.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "storage.googleapis.com",
    # Creates the Compute Engine default service account, which Cloud
    # Functions builds with (see grant_default_build_account).
    "compute.googleapis.com",
  ])

  project = var.project_id
  service = each.value
  # Other workloads of the project may use these APIs too.
  disable_on_destroy = false
}

# The store's collections need no composite index as the store is laid out
# (DESIGN.md decision 3): each query filters or orders on one field inside
# one parent document (one namespace's containers, one container's log
# chunks by sequence number, functions by key), which Firestore's automatic
# single-field indexes serve. A query that needs a composite index gets a
# google_firestore_index here (the deploy test allows that type).
resource "google_firestore_database" "default" {
  project         = var.project_id
  name            = "(default)"
  location_id     = local.firestore_location
  type            = "FIRESTORE_NATIVE"
  deletion_policy = var.delete_firestore_on_destroy ? "DELETE" : "ABANDON"

  depends_on = [google_project_service.apis]
}

# The final documents of containers removed together with their last exit
# (an --rm container's end is one write) serve their followers and
# waiters for ten minutes; Firestore's TTL policy deletes them after their
# expires field, at no write of the control plane's.
resource "google_firestore_field" "removed_expires" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "removed"
  field      = "expires"
  ttl_config {}
  index_config {} # no index on a TTL field: it is never queried
}
