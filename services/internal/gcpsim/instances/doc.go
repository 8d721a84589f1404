// Package instances runs Cloud Run revision instances as real containers
// with runc, the way gcpsim serves function URLs. An instance is started per
// request when no idle one of the revision exists (at most MaxInstances,
// each serving at most Concurrency requests), from a fresh root filesystem
// (overlayfs over a per-image-digest unpacked cache, filled as a revision
// deploys (Manager.Prefetch), or a full copy), with
// PORT set and a network namespace of its own (package instnet: relays to
// the host's loopback, internet egress through pasta), whose
// /etc/resolv.conf and /etc/hosts are files of its rootfs. Requests are
// proxied to it, inside its namespace, with the revision's timeout; an idle instance is reused, and stopped after an idle
// timeout or when its revision is retired. Instance stdout/stderr lines
// become log entries.
//
// Files: manager.go (the Manager), proxy.go (forwarding a request),
// pool.go (instances of one revision), instance.go (one runc container),
// output.go (its stdout/stderr as log entries), spec.go and env.go (its OCI
// config and environment), users.go (resolving the image's User),
// images.go and extract.go (pull and unpack), rootfs.go (fresh per-instance
// root filesystems).
package instances
