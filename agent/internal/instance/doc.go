// Package instance serves one invocation of a function instance: one
// container. It ties the hub connection (package session) to the container's
// process (package process): it runs each Start as a new run on the same
// filesystem, pumps the process's output to the hub under flow control (and
// copies it to the agent's own stdout/stderr for Cloud Logging), reports the
// exit status until the hub has stored it, and decides when the instance
// ends: on Shutdown, when the linger time after the last exit passes without
// a new Start, or when the hub stays unreachable.
//
// One goroutine (Run's loop) owns the instance's state; the session's read
// loop and the runs talk to it through events.
package instance
