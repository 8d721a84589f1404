output "service_url" {
  description = "URL of the control plane (Cloud Run service)."
  value       = google_cloud_run_v2_service.controlplane.uri
}

output "callback_url" {
  description = "URL function agents dial back to: the service's deterministic URL as WebSocket."
  value       = local.callback_url
}

output "token_command" {
  description = "Command that prints the admin token (needs roles/secretmanager.secretAccessor on the secret: var.token_readers)."
  value       = local.token_command
}

output "forwarder_command" {
  description = "Command that runs the forwarder on this machine against the control plane."
  value       = "SOCKERLESS_TOKEN=\"$(${local.token_command})\" forwarder --listen unix://${local.forwarder_socket} --upstream ${google_cloud_run_v2_service.controlplane.uri}"
}

output "docker_host" {
  description = "The DOCKER_HOST line for a shell where the forwarder runs."
  value       = "export DOCKER_HOST=unix://${local.forwarder_socket}"
}

output "build_command" {
  description = "Command that tests, builds and deploys the control plane with cloudbuild.yaml, from the repository root."
  value       = "gcloud builds submit --project=${var.project_id} --region=${var.region} --config=cloudbuild.yaml --service-account=${google_service_account.build.id} --gcs-source-staging-dir=gs://${google_storage_bucket.build.name}/source --substitutions=_REGION=${var.region},_REPOSITORY=${google_artifact_registry_repository.controlplane.repository_id},_SERVICE=${google_cloud_run_v2_service.controlplane.name}"
}

output "image_repository" {
  description = "Artifact Registry repository of the control plane image."
  value       = local.controlplane_image_repo
}

output "admin_token_secret" {
  description = "Secret Manager secret holding the admin token."
  value       = google_secret_manager_secret.admin_token.id
}

output "controlplane_service_account" {
  description = "Email of the account the control plane runs as."
  value       = google_service_account.controlplane.email
}

output "functions_service_account" {
  description = "Email of the account the functions (user containers) run as."
  value       = google_service_account.functions.email
}

output "google_audience" {
  description = "Audience of Google ID tokens the control plane accepts (forwarder --google --google-audience)."
  value       = var.google_identity ? local.google_audience : ""
}
