// Package netview gives a container Docker's view of its networks inside
// its function instance, as the control plane describes it in a
// proto.NetworkView: /etc/hosts laid out as docker writes it, an embedded
// DNS server at 127.0.0.11 (github.com/miekg/dns) answering the names of
// its peers and forwarding the rest to the instance's own resolvers,
// /etc/resolv.conf pointing at it, and a listener on each peer's address
// for each of the peer's ports, which carries every accepted connection
// over the mesh to that peer. It also watches which TCP ports the
// container's own processes listen on (/proc/net/tcp), so that peers can
// reach ports no image declares.
//
// Every Apply replaces the whole view; files are written atomically and
// only when they change; listeners are opened and closed by difference, so
// connections through a peer that stays are never cut.
package netview
