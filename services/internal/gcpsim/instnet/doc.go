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
//   - Internet egress through pasta (Debian's passt package): one pasta
//     process for all of a Pool's instances, in an egress namespace of
//     their own (egress.go), where pasta's tap interface has the host's
//     addresses and routes and carries traffic over ordinary sockets of
//     the host. Each instance is linked to it by a veth pair (eth0 in the
//     instance, an address of its own from 198.18.0.0/16 and
//     fd53:6f63:6b6c::/64, default routes through the egress namespace,
//     which masquerades behind pasta's addresses); nftables rules there
//     let an instance reach only pasta's side, not another instance nor
//     the egress namespace itself. One pasta per instance kept ~29 MiB
//     resident each (5.7 GiB for 200). No host network configuration
//     changes (no veth, route, sysctl or firewall rule on the host: they
//     are all inside the namespaces gcpsim made). Without pasta, or on a
//     host without a default route (pasta refuses to start there), an
//     instance reaches only the relays.
//
// gcpsim reaches the instance's PORT by dialling from a thread inside the
// namespace. Each network lives in a directory of its own under the
// pool's (gcpsim: STATE_DIR/run/nets/net-HEX/): the namespace is bound at
// netns there (nsenter --net=…/netns enters it; /sim/v1/instances names
// it); the egress namespace's directory is egress/ beside them, where
// pasta writes pasta.pid and pasta.log. A Pool removes what a crashed
// gcpsim left under its directory (pasta, namespaces) when it starts, and
// keeps one network linked ahead so that a cold start does not wait for
// the link.
//
// Files: net.go (Net: open, dial, close), pool.go (Pool), netns.go
// (namespaces and entering them), relay.go (the relays), egress.go (the
// egress namespace and the links to it), pasta.go (the pasta process),
// files.go (the instance's resolv.conf and hosts).
package instnet
