# Control plane images, pushed by cloudbuild.yaml.
resource "google_artifact_registry_repository" "controlplane" {
  project       = var.project_id
  location      = var.region
  repository_id = var.name
  format        = "DOCKER"
  description   = "Sockerless control plane images (cloudbuild.yaml)."

  depends_on = [google_project_service.apis]
}

# Wrapped images: a user's image plus the agent layer, pushed by the control
# plane, one per distinct image (cached by content hash).
resource "google_artifact_registry_repository" "wrapped" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name}-wrapped"
  format        = "DOCKER"
  description   = "Sockerless wrapped images: user images plus the agent layer."

  depends_on = [google_project_service.apis]
}

# Docker Hub through Artifact Registry: the control plane's docker.io
# mirror, so pulls are cached in the region and not rate-limited per IP.
resource "google_artifact_registry_repository" "dockerhub" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name}-dockerhub"
  format        = "DOCKER"
  mode          = "REMOTE_REPOSITORY"
  description   = "Docker Hub, mirrored for Sockerless."

  remote_repository_config {
    description = "Docker Hub"
    docker_repository {
      public_repository = "DOCKER_HUB"
    }
  }

  depends_on = [google_project_service.apis]
}
