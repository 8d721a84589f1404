variable "project_id" {
  description = "Google Cloud project ID to deploy Sockerless into."
  type        = string

  validation {
    condition     = can(regex("^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6 to 30 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "Region of Sockerless, e.g. us-central1."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west4 (not a zone)."
  }
}

variable "token_readers" {
  description = "Members allowed to read the admin token, e.g. [\"group:developers@example.com\"]."
  type        = list(string)
  default     = []
}

variable "admin_token_rotation" {
  description = "Change to rotate the admin token (e.g. to today's date)."
  type        = string
  default     = "1"
}
