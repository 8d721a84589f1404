variable "project_id" {
  description = "Google Cloud project ID to deploy Sockerless into."
  type        = string

  validation {
    condition     = can(regex("^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "Region of the control plane, its functions, Artifact Registry repositories and (by default) Firestore, e.g. us-central1."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west4 (not a zone)."
  }
}

variable "name" {
  description = "Name of the Cloud Run service and prefix of every resource this module creates (service accounts, repositories, secret, bucket)."
  type        = string
  default     = "sockerless"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,22}[a-z0-9]$", var.name))
    error_message = "name must be 4 to 24 lower-case letters, digits and dashes, starting with a letter (service account IDs built from it are limited to 30 characters)."
  }
}

variable "image" {
  description = "Control plane image the service starts with. The first apply runs before any build, so the default is Google's sample container; cloudbuild.yaml then deploys the real image, and later applies leave the image alone."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "firestore_location" {
  description = "Location of the Firestore database: a region (default: var.region) or a multi-region such as nam5 or eur3. It cannot change after creation."
  type        = string
  default     = ""
}

variable "delete_firestore_on_destroy" {
  description = "Whether terraform destroy deletes the Firestore database and all container state in it. false abandons it: the database stays, and a later apply in the same project fails until it is deleted by hand."
  type        = bool
  default     = false
}

variable "admin_token_rotation" {
  description = "Change this (any new value, e.g. a date) to generate a new admin token: a new Secret Manager version and a new service revision that reads it."
  type        = string
  default     = "1"
}

variable "token_readers" {
  description = "Members allowed to read the admin token from Secret Manager, e.g. [\"group:developers@example.com\", \"serviceAccount:ci@PROJECT.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []
}

variable "public" {
  description = "Whether the service accepts requests without Google IAM (allUsers run.invoker). Sockerless checks its own bearer token on every request and agents present a per-container secret, and agents in functions cannot present a Google ID token, so this is true unless a proxy in front authenticates."
  type        = bool
  default     = true
}

variable "google_identity" {
  description = "Whether the control plane accepts Google ID tokens (forwarder --google) of members registered with controlplane members set, besides its own tokens; the audience is output google_audience."
  type        = bool
  default     = true
}

variable "iam_invokers" {
  description = "With public = false, the members Cloud Run IAM lets call the service (roles/run.invoker), e.g. [\"group:developers@example.com\"]. Cloud Run then demands a Google ID token on every request, agents' callbacks included, which agents do not send yet: keep public = true and use google_identity unless a proxy carries the agents' path."
  type        = list(string)
  default     = []
}

variable "memory" {
  description = "Memory of the control plane's instance."
  type        = string
  default     = "1Gi"
}

variable "container_concurrency" {
  description = "Requests one control plane instance serves at once. Every attach, logs -f, exec and agent connection holds one request open, so size it for streams, not for short calls."
  type        = number
  default     = 1000

  validation {
    condition     = var.container_concurrency >= 80 && var.container_concurrency <= 1000
    error_message = "container_concurrency must be between 80 and 1000 (Cloud Run's maximum)."
  }
}

variable "log_level" {
  description = "Control plane log level: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

variable "grant_default_build_account" {
  description = "Whether to let Cloud Functions build the control plane's functions as the Compute Engine default service account: grants it roles/cloudbuild.builds.builder and lets the control plane act as it. Needed where an organization policy disables Google's automatic grants; set false if the project already has them or that account holds roles the control plane must not act as."
  type        = bool
  default     = true
}

variable "volume_nfs" {
  description = "NFS share (e.g. a Filestore instance) holding docker volumes instead of a Cloud Storage bucket: server, export path, and the VPC network and subnetwork the functions and the control plane reach it through. Choose it for POSIX semantics (file locking, atomic renames, databases, git checkouts shared live). null: a bucket, created by this module."
  type = object({
    server     = string
    path       = string
    network    = string
    subnetwork = string
  })
  default = null
}

variable "delete_volumes_on_destroy" {
  description = "Let terraform destroy delete the volumes bucket with the data in it."
  type        = bool
  default     = false
}
