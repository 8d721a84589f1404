// Package agenthub is where the agent of every function instance dials back:
// one multiplexed WebSocket per container (github.com/coder/websocket)
// speaking agent/proto. The Hub authenticates the dial, keeps the current
// connection of each container, persists what the agent reports through the
// engine's Backend, and gives the engine an engine.AgentSession to drive the
// agent (start, exec, stdin, resize, signal, requests, shutdown).
//
// # Ordering guarantees
//
//   - Ack ⇒ stored. A TypeAck{Stream, Seq} is sent only after
//     Backend.StoreOutput returned nil for a batch holding every data frame of
//     that stream up to Seq. If a store fails, nothing of the batch is acked
//     and the connection is closed; the agent reconnects and re-sends.
//   - No duplicates. A data frame whose Seq is at or below the stored acked
//     sequence of its stream (Backend.AgentAcked, then advanced by every
//     stored batch) is dropped, so frames re-sent after a reconnect are never
//     stored twice. A reconnect waits for the previous connection of the same
//     container to finish its in-flight store before reading the acked
//     sequences.
//   - Output order. Data frames are stored in arrival order, across streams,
//     in batches of the frames already read (at most 1024 frames or 1 MiB); the
//     hub never waits for more frames to fill a batch, except once, for
//     OutputExitStorer.OutputLinger, for the exit that may follow the output.
//   - Exit after output. An Exit frame is handed to Backend.StoreExit only
//     after every data frame read before it is stored, or, with a Backend
//     that is an OutputExitStorer, stored with the batch read right before
//     it in one step; TypeExitAck follows a successful store. Start waiters see a start-failure Exit only after
//     it is stored. ExecExit frames follow the same rule with StoreExecExit,
//     TypeExecExitAck and Exec waiters, so an exec's exit code is stored
//     before a client reading its output sees the output end.
//   - One live connection per container. A dial with the right secret
//     replaces the older connection (a reconnect); a dial without it is
//     refused with 401 before the WebSocket upgrade and never disturbs the
//     live one.
//
// Writes to a connection are serialized; every connection is pinged every
// 15 s and closed when a ping fails. A replaced connection is cut off without
// a close handshake (its agent has already left it). Hub.Close closes every
// connection with StatusGoingAway ("reconnect"), cuts off agents that do not
// finish the handshake within 3 s, and waits for every connection to drain.
//
// Sessions (engine.AgentSession) and pending Start and Exec calls belong to the
// container, not to a connection: they keep working across reconnects.
package agenthub
