// Package process starts and supervises the container's process inside a
// function instance: it resolves the executable through the process's own
// PATH, switches to the requested user (names looked up in the image's
// /etc/passwd and /etc/group), wires stdio to pipes or a pseudo-terminal, and
// delivers signals.
//
// The agent is PID 1 of the instance, so it must reap every orphan. A
// Supervisor does all waiting for children in one goroutine (Run, woken by
// SIGCHLD): it reaps any exited child with wait4(-1, WNOHANG) under the same
// lock that Start holds across fork+register and Signal across check+kill.
// A signal therefore never reaches a reaped (maybe recycled) pid, and the
// main process's status always reaches its Proc. Every child of the agent
// must be started through the Supervisor: any other wait (os/exec) would
// race with it.
package process
