// Package gcf implements engine.Functions on Google Cloud Functions (2nd
// gen) and Cloud Run, with the production Go clients
// (cloud.google.com/go/functions/apiv2 and cloud.google.com/go/run/apiv2).
//
// Functions v2 builds only from source, so Create makes the function from
// an embedded placeholder source (DESIGN.md decision 2), then sets the
// image of the function's underlying Cloud Run service to the wrapped
// container image with UpdateService. Invoke POSTs an invocation to the
// function URL and holds the request open for the container's life.
//
// With Config.Endpoint set, the clients talk plaintext gRPC to that address
// without credentials (gcpsim); otherwise they use Google's endpoints and
// Application Default Credentials, and invocations carry Google ID tokens.
//
// Files: gcf.go (Driver, Create, Delete), invoke.go (Invoke), source.go
// (the stub source zip), wait.go (operation polling).
package gcf
