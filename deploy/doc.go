// Package deploy holds no code: it is the home of the offline tests of what
// ships Sockerless to Google Cloud — the control plane's Dockerfile, the
// Cloud Run service definition, the local-stack script, ../cloudbuild.yaml
// and the Terraform module under ../terraform. Google's services and the
// Terraform provider cannot be reached from CI, so the tests check what can
// be checked without them: files parse, name only what exists, the
// binaries build, and the Terraform module is complete and formatted.
//
// The settings table (services/internal/settings) is internal to services/,
// so these tests learn the names the control plane reads from the control
// plane itself: they build it and read its --help, where every setting
// lists its variables and a hosted one is marked. The settings package's
// own tests check the same files against the table directly, through
// ReadKnativeService and ReadTerraformService.
package deploy
