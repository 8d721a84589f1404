// Package gcpsim is the local Google: a faithful stand-in for the Google
// APIs the Sockerless control plane calls, on the real wire, so the
// production Go clients run against it in every test.
//
// One gRPC listener serves Cloud Functions v2 (FunctionService), Cloud Run
// v2 (Services), google.longrunning Operations and Cloud Logging v2. One HTTP
// listener serves the source upload URLs, an OCI registry under /v2/, the
// function URLs (/functions/PROJECT/LOCATION/ID/…, proxied to instances
// that run as real runc containers) and gcpsim's own /sim/v1/ endpoints
// (stats, logs, instances) for tests in other processes.
//
// Files: server.go (Server, Config, lifecycle), http.go (the HTTP routes),
// stats.go (counters). The APIs live in the subpackages functions, run,
// lro, logging, registry and instances.
package gcpsim
