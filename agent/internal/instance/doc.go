// Package instance serves one invocation of a function instance: one
// container. It ties the hub connection (package session) to the container's
// process (package process): it runs each Start as a new run on the same
// filesystem, pumps the process's output to the hub under flow control (and
// copies it to the agent's own stdout/stderr for Cloud Logging), reports the
// exit status until the hub has stored it, and decides when the instance
// ends: on Shutdown, when the linger time after the last exit passes without
// a new Start, when the hub stays unreachable, or when the hub refuses it
// as an instance the control plane has ended (session.ErrInstanceEnded).
//
// Execs (docker exec) run beside the main process through the same
// Supervisor; their output flows on the streams the hub names, under the
// same flow control, and their exit is re-sent until acknowledged. Stdin
// and resize frames are routed by stream and exec ID. As in docker, execs
// still running when the main process ends are killed. An exec whose first
// argument is proto.ArchiveCommand does docker cp's work in Go instead.
//
// One goroutine (Run's loop) owns the instance's state; the session's read
// loop, the runs and the execs talk to it through events.
package instance
