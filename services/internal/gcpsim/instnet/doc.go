// Package instnet gives each gcpsim function instance a network of its
// own, as Cloud Run does: a fresh network namespace with loopback up, so
// that two instances can both listen on :80 or :5432, and two ways out:
//
//   - Relays to the host's loopback. gcpsim listens inside the namespace
//     (a socket made while a thread is in a namespace stays in it) on
//     127.0.0.1:P and [::1]:P for each configured host port P, and on
//     port 53 (TCP and UDP) of each loopback resolver named in the host's
//     resolv.conf (systemd-resolved's 127.0.0.53, say); each connection
//     or query is joined to the same address on the host. So the agent's
//     callback URL ws://127.0.0.1:P works unchanged inside the instance,
//     and so does the host's resolv.conf, copied into it. Nothing else on
//     the host's loopback is reachable, as from a container on Docker's
//     bridge.
//   - Internet egress through pasta (Debian's passt package), one process
//     per instance: a tap interface with the host's addresses and routes
//     whose traffic pasta carries over ordinary sockets of the host. No
//     host network configuration changes (no veth, route, sysctl or
//     firewall rule). Without pasta, or on a host without a default route
//     (pasta refuses to start there), an instance reaches only the relays.
//
// gcpsim reaches the instance's PORT by dialling from a thread inside the
// namespace. Each network lives in a directory of its own under the
// pool's (gcpsim: STATE_DIR/run/nets/net-HEX/): the namespace is bound at
// netns there (nsenter --net=…/netns enters it; /sim/v1/instances names
// it), pasta writes pasta.pid and pasta.log beside it. A Pool removes what
// a crashed gcpsim left under its directory (pasta processes, namespaces)
// when it starts, and keeps one network with pasta set up ahead so that a
// cold start does not wait for pasta.
//
// Files: net.go (Net: open, dial, close), pool.go (Pool), netns.go
// (namespaces and entering them), relay.go (the relays), pasta.go (the
// pasta process), files.go (the instance's resolv.conf and hosts).
package instnet
