// Package wsconn carries a byte stream — a net.Conn with half-close — over a
// WebSocket (github.com/coder/websocket).
//
// Why: Docker hijacks the HTTP connection for attach and exec start
// (`Connection: Upgrade`, `Upgrade: tcp`, answered by `101 UPGRADED`), but
// Google's front end in front of Cloud Run only carries WebSocket upgrades.
// The forwarder therefore opens a WebSocket "tunnel" to the control plane and
// writes the client's raw HTTP request into it; the control plane serves the
// tunnel's bytes with its ordinary http.Server, so the very same handlers —
// which hijack as usual — serve direct and tunneled clients alike.
//
// Wire format on the WebSocket:
//
//   - a binary message carries bytes of the stream (writes are split into
//     messages of at most MaxMessage bytes; an empty binary message is a
//     keepalive and carries nothing);
//   - the text message "EOF" says the peer closed its write side: Read returns
//     io.EOF once the bytes before it are consumed, while Write keeps working;
//   - a WebSocket close frame ends the connection in both directions.
//
// Conn implements net.Conn plus CloseWrite. Deadlines interrupt a blocked Read
// without losing data (http.Server relies on that when it hijacks), so a Conn
// can be served by http.Server directly.
//
// # Control plane wiring
//
// The control plane mounts a Listener behind its token check and serves it
// with the same handler as its other listeners:
//
//	tunnels := wsconn.NewListener(wsconn.Addr("tunnel"))
//	mux.Handle("GET /sockerless/v1/tunnel", tunnels) // behind the token check
//	srv := &http.Server{Handler: handler}          // the same handler as the TCP/unix listeners
//	go srv.Serve(tunnels)                          // hijacking handlers work unchanged
//	...
//	srv.Shutdown(ctx)                              // closes the Listener too
//
// Requests arriving through a tunnel carry their own Authorization header
// (the forwarder adds it), so the token check applies to them as well. Do not
// set http.Server.WriteTimeout on the tunnel server: a write deadline that
// expires in the middle of a write closes the whole WebSocket, and hijacked
// streams live far longer than any request.
//
// Clients open tunnels with Dial (the forwarder does).
package wsconn
