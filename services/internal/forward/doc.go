// Package forward is the forwarder's core: an http.Handler that carries a
// local Docker client's requests to the control plane with the forwarder's
// token.
//
// Two paths:
//
//   - Ordinary requests, including genuine WebSocket upgrades such as
//     /containers/{id}/attach/ws, go through httputil.ReverseProxy with
//     immediate flushing, so `docker logs -f`, events and pull progress
//     stream.
//   - Requests docker hijacks — any Upgrade other than "websocket" (docker
//     sends `Upgrade: tcp`), and POST .../attach and POST /exec/{id}/start even
//     without Upgrade (old clients hijack those too) — go through a WebSocket
//     tunnel to the control plane's /sockerless/v1/tunnel (package wsconn),
//     because Cloud Run's front end carries no other upgrade. The request is
//     written into the tunnel as is, the client connection is hijacked, and
//     bytes are bridged both ways with half-close. The response, 101 or an
//     error, comes back through the tunnel unparsed.
//
// The forwarder keeps no state beyond its open tunnels.
package forward
