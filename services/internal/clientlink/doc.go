// Package clientlink is the link between a client side (the forwarder) and
// the control plane that carries published ports: one WebSocket (Path,
// behind the token) carrying yamux (wsmux.Mux), opened by the forwarder
// and kept open with reconnects.
//
// Streams on it:
//
//   - The control stream, the first the forwarder opens: a Hello line from
//     the forwarder (its client ID and the host ports it exposes), then
//     Op lines from the control plane (bind, release, sync) each answered
//     by a Result line with the same Seq. The forwarder carries out ops in
//     order. A sync comes first on every connection: it names every
//     running container the client binds ports for, with the ports it
//     bound, so after a control plane restart (or a dropped link) the
//     forwarder keeps what is still wanted, without a gap in listening,
//     and releases the rest.
//   - A stream per connection accepted on a published port, opened by the
//     forwarder with a proto.MeshOpen{Kind: KindPort, Container, Port}
//     line, answered with a proto.MeshReply, then the connection's bytes.
//   - A stream per container connection to the client's machine
//     (host.docker.internal), opened by the control plane with a
//     proto.MeshOpen{Kind: proto.MeshHost, Port}: the forwarder connects
//     to 127.0.0.1:Port if its user exposed that port.
//
// The forwarder's listeners outlive the link: while the control plane is
// away, connections already open end (their streams die with the link) and
// new ones wait a little for the link to come back.
package clientlink
