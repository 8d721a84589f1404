// Package gcpsim is the local Google: a faithful stand-in for the Google
// APIs the Sockerless control plane calls, on the real wire, so the
// production Go clients run against it in every test.
//
// One gRPC listener serves Cloud Functions v2 (FunctionService), Cloud Run
// v2 (Services), google.longrunning Operations and Cloud Logging v2. One HTTP
// listener serves the source upload URLs, an OCI registry under /v2/, the
// function URLs (/functions/PROJECT/LOCATION/ID/…, proxied to instances
// that run as real runc containers) and gcpsim's own /sim/v1/ endpoints
// (stats, logs, instances, host-ports) for tests in other processes.
//
// Each instance runs in a network namespace of its own, as on Cloud Run:
// two instances can both listen on :80, and they cannot reach each other.
// An instance reaches the
// host's loopback only on the ports gcpsim was given (Config.HostPorts,
// --host-port, POST /sim/v1/host-ports: the dev control plane's callback
// port), at the same address (127.0.0.1:P, [::1]:P), through relays in
// gcpsim; the host's loopback resolvers (systemd-resolved's 127.0.0.53)
// likewise, so its /etc/resolv.conf is a copy of the host's; and the
// internet through pasta (Debian's passt), where installed and the host
// has a default route. /etc/resolv.conf and /etc/hosts are files of the
// instance, which its agent rewrites. See package instnet. No host network
// configuration changes: no interface, route, sysctl or firewall rule (the
// links, routes and rules of the instances' shared egress are all inside
// namespaces of gcpsim's own).
//
// # Delay profiles
//
// Config.Profile sets Google's clock (command gcpsim --profile, the dev
// control plane's --sim-profile). "fast", the default, completes every
// long-running operation after Config.OperationDelay, starts instances as
// fast as runc does and has no quotas: for tests of behaviour. "google"
// takes the time Google takes, each figure a field of Profile:
//
//   - CreateFunction 90 s: Cloud Functions v2 CreateFunction (and
//     UpdateFunction) builds the source with Cloud Build, pushes it and
//     deploys the first Cloud Run revision. Google documents no figure;
//     published measurements of 2nd gen deploys of a small function are
//     one to three minutes ("Deploying can take up to a few minutes",
//     cloud.google.com/functions/docs/deploy; the seed's own runs of
//     CreateFunction took 1–3 minutes, DESIGN.md decision 1).
//   - Revision 15 s: Cloud Run v2 CreateService, UpdateService and
//     DeleteService, deploying one revision of a ready image: 10–20 s in
//     published measurements and in `gcloud run deploy` of a prebuilt
//     image (cloud.google.com/run/docs/deploying).
//   - DeleteFunction 30 s: DeleteFunction removes the function, its
//     service and its build artefacts; measured at half a minute or so.
//   - ColdStart 1.5 s plus the image's compressed size at 50 MiB/s: a new
//     instance of a small image (cloud.google.com/run/docs/tips/general,
//     "Optimize ... startup"; Cloud Run's published cold starts of small
//     Go images are 1–2 s; image streaming fetches a large image faster
//     than the whole-image pull modelled here, so large images are
//     pessimistic).
//     The cold start is counted from the moment the instance is asked
//     for: gcpsim's own work for it (pulling and unpacking the image
//     locally, the root filesystem, the network namespace) happens inside
//     that time, and the entrypoint starts when both are over, so a run
//     measures Google's clock and not this machine's unpacking beside it.
//     A revision's image is unpacked (once per digest) while the revision
//     deploys; every cold start still pays the modelled pull, as Cloud
//     Run's instances each fetch the image (its layers cached on a host
//     are not counted on: the model stays pessimistic).
//   - FunctionsPerRegion 1,000: "Number of functions ... 1,000 minus the
//     number of Cloud Run services deployed", per region
//     (cloud.google.com/functions/quotas).
//   - WritesPerMinute 60 per API and region: the Rate Limits of the
//     Cloud Functions and Cloud Run Admin APIs on the quotas pages cap
//     write (create, update, delete) calls per minute per project and
//     region; 60 is a conservative reading of them, settable.
//
// A call over a quota answers as Google does: gRPC RESOURCE_EXHAUSTED
// (REST 429) with google.rpc.ErrorInfo (reason RATE_LIMIT_EXCEEDED,
// quota_metric, quota_limit) and google.rpc.QuotaFailure (package quota).
// Profile.Scaled (--time-scale) multiplies every delay and the quota's
// minute: tests run the google profile at 0.02 in seconds, in the order of
// events Google's clock gives; benchmarks state their scale.
//
// Files: server.go (Server, Config, lifecycle), http.go (the HTTP routes),
// stats.go (counters). The APIs live in the subpackages functions, run,
// lro, logging, registry, instances and instnet.
package gcpsim
