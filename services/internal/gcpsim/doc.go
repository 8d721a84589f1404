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
// configuration changes: no interface, route, sysctl or firewall rule.
//
// Files: server.go (Server, Config, lifecycle), http.go (the HTTP routes),
// stats.go (counters). The APIs live in the subpackages functions, run,
// lro, logging, registry, instances and instnet.
package gcpsim
