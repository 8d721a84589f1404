# The smallest root that deploys Sockerless into one project:
#
#   cp terraform.tfvars.example terraform.tfvars   # set project_id
#   terraform init && terraform apply
#
# State holds the admin token: for a shared deployment, add a gcs backend
# in a private bucket.

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "sockerless" {
  source = "../../modules/sockerless"

  project_id           = var.project_id
  region               = var.region
  token_readers        = var.token_readers
  admin_token_rotation = var.admin_token_rotation
}
