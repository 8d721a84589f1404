// Package session is the agent's end of the one WebSocket it keeps with the
// control plane's hub (protocol in agent/proto).
//
// A Session outlives connections: it dials, says Hello, and when the
// connection drops it dials again with backoff, says Hello again and re-sends
// everything the hub has not acknowledged, in the original order: data frames
// not yet acked (kept in a queue per stream) and Exits not yet acked. A
// process's output is never dropped or reordered; per stream at most
// proto.Window bytes are unacknowledged, and a producer waits (WaitWindow)
// before reading more, so a slow hub slows the process instead of growing
// memory. The hub's commands reach a Handler from the read loop.
package session
