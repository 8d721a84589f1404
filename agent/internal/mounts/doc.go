// Package mounts applies a container's volumes and tmpfs mounts inside its
// function instance (DESIGN.md "The storage plane", proto.Mount), and
// keeps the privilege to do so away from the container's processes.
//
// Cloud Run's second generation execution environment (a microVM, "full
// Linux compatibility", where Google's own tutorials mount NFS and gcsfuse
// from inside the container) lets the container's root mount: so the
// agent bind-mounts each volume's directory of the shared volume file
// system (proto.VolumesRoot) at its destination, remounts it read-only for
// :ro (writes then fail with EROFS, as under docker), mounts tmpfs of the
// asked size, and finally covers VolumesRoot with an empty read-only
// tmpfs, so a container sees its own volumes and nothing of other
// namespaces'. The same bind and tmpfs mounts keep working when Cloud Run
// runs containers in a user namespace (announced for 2026: only mounting
// network file systems from inside breaks), since both are allowed to the
// owner of a mount namespace.
//
// The container's processes must not keep that privilege: docker gives
// them its default capability set, without CAP_SYS_ADMIN. Capability
// bounding sets are per thread and Go cannot drop them in a forked child,
// so the agent splits at boot (Boot): a privileged helper process, which
// only ever applies mounts, stays behind a socket; the agent re-executes
// itself with its bounding set cut to docker's default, so everything it
// starts, the user's process and every exec, inherits docker's set.
package mounts
