// Package netplane is the control side of the network plane (DESIGN.md
// "The network plane"): docker networks as namespace-scoped objects in the
// store, the addresses of containers on them (inside 127.0.0.0/8, which
// every function instance can bind without privileges), and the network
// view each container's agent applies: its /etc/hosts, its embedded DNS
// names, and the addresses of its peers, where the agent listens and
// tunnels each connection over the mesh.
//
// A network record holds its running members (endpoints), each with what
// its peers need to reach it (address, names, ports) and what its own view
// needs (hostname, extra hosts, links, DNS settings). So every view of a
// namespace is computed from its network records alone: an event (a start,
// an exit, a connect, a change of listening ports) costs one store write
// per network touched and one list of the namespace's networks, never a
// read per member. Views are pushed by a coalescing pusher that sends each
// agent only a view that changed.
//
// The engine consumes the plane through engine.Networks; the Docker API's
// network routes call it directly.
package netplane
