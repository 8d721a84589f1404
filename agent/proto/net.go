package proto

import "encoding/json"

// The network plane (DESIGN.md "The network plane"). A function instance
// accepts no connection but its invocation, so every TCP connection between
// a container and anything else rides the agent's mesh: a second WebSocket
// to the hub (MeshPath, authenticated like ConnectPath) that carries one
// multiplexed stream per TCP connection, with flow control and half-close
// per stream. Bulk traffic on the mesh never delays the control connection's
// logs and exit codes.
//
// Every mesh stream begins with one MeshOpen (JSON, then "\n") from the
// side that opened it, answered by one MeshReply (JSON, then "\n"); after a
// reply without Error the stream carries the connection's bytes both ways.
//
// The control plane tells the agent what the container's network looks
// like with a NetworkView: in Start (applied before the process starts) and
// in TypeNetwork frames whenever it changes. The agent reports the TCP ports
// the container's processes listen on with TypeListening, so peers reach
// ports no image declares.

// Frame types of the network plane (on the control connection).
const (
	// TypeNetwork (hub→agent, JSON NetworkView) replaces the container's
	// network view.
	TypeNetwork Type = 20
	// TypeListening (agent→hub, JSON Listening) says which TCP ports the
	// container's processes listen on, whenever that changes (and once
	// after every connect).
	TypeListening Type = 21
)

// MeshPath is the hub's WebSocket path for an agent's mesh connection,
// relative to the callback base URL. The upgrade carries HeaderContainer
// and the container's secret like ConnectPath.
const MeshPath = "/agent/v1/mesh"

// Mesh stream kinds (MeshOpen.Kind).
const (
	// MeshDial (hub→agent): connect to Addr inside the instance (a
	// published port, or a peer's connection to this container), from
	// From if set.
	MeshDial = "dial"
	// MeshPeer (agent→hub): a process of the container connected to Addr,
	// an address of peer container Container on a network they share.
	MeshPeer = "peer"
	// MeshHost (agent→hub): a process of the container connected to the
	// client's machine (host.docker.internal, host-gateway) on Port; the
	// client side dials 127.0.0.1:Port if its user allowed that port.
	MeshHost = "host"
	// MeshDocker (agent→hub): a connection to the Docker API socket bound
	// into the container (the control plane serves it as the container's
	// namespace).
	MeshDocker = "docker"
	// MeshArchive (hub→agent): docker cp's read side without the log
	// store: Op "get" streams Path as a tar, Op "stat" writes one
	// ArchiveStat line. The stream ends with its data.
	MeshArchive = "archive"
	// MeshBind (agent→hub, and control plane→client side): the sync of
	// the container's host bind mount number Port (package bindsync); the
	// control plane adds the bind's Source, ReadOnly and Create for the
	// client side, which serves the host's end.
	MeshBind = "bind"
)

// ArchiveStat is the answer of a MeshArchive "stat": an ArchiveCommand
// exit code, its message, and the path's stat (JSON of docker's PathStat)
// when Code is ArchiveOK.
type ArchiveStat struct {
	Code    int             `json:"code"`
	Message string          `json:"message,omitempty"`
	Stat    json.RawMessage `json:"stat,omitempty"`
}

// MeshOpen is the first line of a mesh stream.
type MeshOpen struct {
	Kind string `json:"kind"`
	// Container is the peer's ID (MeshPeer).
	Container string `json:"container,omitempty"`
	// Addr is "ip:port": where to connect inside the instance (MeshDial),
	// or the peer's address that was connected to (MeshPeer).
	Addr string `json:"addr,omitempty"`
	// From is the source address of the original connection (the peer
	// container's own address), so the server sees its peer's address.
	From string `json:"from,omitempty"`
	// Port is the port on the client's machine (MeshHost), or the bind's
	// number (MeshBind).
	Port int `json:"port,omitempty"`
	// Network is "udp" for a stream of datagrams (each framed as
	// WriteDatagram frames it) to a UDP port; "" is TCP.
	Network string `json:"network,omitempty"`
	// Op and Path are MeshArchive's operation and path in the container.
	Op   string `json:"op,omitempty"`
	Path string `json:"path,omitempty"`
	// Source is the bind's path on the client's machine (MeshBind to the
	// client side).
	Source string `json:"source,omitempty"`
	// ReadOnly marks a read-only bind (MeshBind to the client side).
	ReadOnly bool `json:"readOnly,omitempty"`
	// Create makes a missing bind source as a directory (MeshBind: docker
	// -v does, --mount type=bind does not).
	Create bool `json:"create,omitempty"`
}

// MeshReply answers a MeshOpen. Refused says nothing listens there (the
// opener resets its side of the connection, as a refused connect would).
type MeshReply struct {
	Error   string `json:"error,omitempty"`
	Refused bool   `json:"refused,omitempty"`
}

// NetworkView is everything the agent needs to give the container Docker's
// network: its /etc/hosts, its resolver, the embedded DNS server and the
// addresses of its peers, where the agent listens and tunnels each accepted
// connection over the mesh. Each view replaces the previous one entirely.
type NetworkView struct {
	// Hosts are the /etc/hosts entries after the localhost lines: the
	// container's own addresses with its hostname (and aliases), links,
	// --add-host entries. The agent writes the file atomically.
	Hosts []HostEntry `json:"hosts,omitempty"`
	// DNS makes the agent serve Docker's embedded DNS at 127.0.0.11:53
	// (UDP and TCP) and point /etc/resolv.conf at it: containers on user
	// networks. Names it does not know go to the instance's own resolvers.
	DNS bool `json:"dns,omitempty"`
	// Names are what the embedded DNS answers: a lower-case name without
	// the trailing dot → its IPv4 addresses (peers' names, aliases, short
	// IDs and hostnames on the networks this container shares with them).
	Names map[string][]string `json:"names,omitempty"`
	// DNSServers, DNSSearch and DNSOptions are --dns, --dns-search and
	// --dns-option, written into /etc/resolv.conf as docker does.
	DNSServers []string `json:"dnsServers,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	// Listen are the addresses the agent listens on for the container.
	Listen []ListenAddr `json:"listen,omitempty"`
}

// HostEntry is one /etc/hosts line.
type HostEntry struct {
	IP    string   `json:"ip"`
	Names []string `json:"names"`
}

// ListenAddr is an address of another container (or of the client's
// machine, at the gateway) that the agent listens on inside this
// container's instance. Each accepted connection becomes a mesh stream:
// MeshPeer to Container at Addr, or MeshHost to Port when Host is set.
type ListenAddr struct {
	// Addr is "ip:port", e.g. "127.18.0.3:5432".
	Addr      string `json:"addr"`
	Container string `json:"container,omitempty"`
	Host      bool   `json:"host,omitempty"`
	Port      int    `json:"port,omitempty"`
	// Network is "udp" for a peer's UDP port: the agent receives
	// datagrams there and carries each source address's as a flow (see
	// ServeDatagrams); "" is TCP.
	Network string `json:"network,omitempty"`
	// Discovered: the peer's processes listen on the port but the peer
	// declares no such port (EXPOSE, published). 127.0.0.0/8 is one
	// loopback, so the agent binds such a port only once the container's
	// own servers have had time to bind theirs, and never one the
	// container listens on itself: a peer's port must not take the
	// container's own server's port away.
	Discovered bool `json:"discovered,omitempty"`
}

// Listening lists the TCP ports that the container's processes (not the
// agent) listen on, on a wildcard address or one of the container's own.
type Listening struct {
	Ports []int `json:"ports"`
}
