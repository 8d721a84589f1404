output "service_url" {
  description = "URL of the control plane."
  value       = module.sockerless.service_url
}

output "forwarder_command" {
  description = "Run this where docker runs."
  value       = module.sockerless.forwarder_command
}

output "docker_host" {
  description = "Then this, in the shell that runs docker."
  value       = module.sockerless.docker_host
}

output "build_command" {
  description = "Test, build and deploy the control plane (from the repository root)."
  value       = module.sockerless.build_command
}

output "token_command" {
  description = "Prints the admin token."
  value       = module.sockerless.token_command
}
