# The admin token: generated here, kept in Secret Manager, read by the
# control plane as SOCKERLESS_TOKEN. It is in the Terraform state too
# (marked sensitive): keep the state in a private bucket.
resource "random_password" "admin_token" {
  length  = 48
  special = false

  keepers = {
    rotation = var.admin_token_rotation
  }
}

resource "google_secret_manager_secret" "admin_token" {
  project   = var.project_id
  secret_id = "${var.name}-admin-token"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "admin_token" {
  secret      = google_secret_manager_secret.admin_token.id
  secret_data = random_password.admin_token.result

  # The service moves to the new version before the old one is destroyed.
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_secret_manager_secret_iam_member" "controlplane_reads_token" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.admin_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.controlplane
}

resource "google_secret_manager_secret_iam_member" "token_readers" {
  for_each = toset(var.token_readers)

  project   = var.project_id
  secret_id = google_secret_manager_secret.admin_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}
