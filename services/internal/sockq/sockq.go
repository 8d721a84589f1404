// Package sockq waits until the peer of a unix socket has read what was
// written to it.
//
// Why: docker's Python SDK reads a hijacked stream (exec, attach) from the
// raw socket after its HTTP library has parsed the 101 answer through a
// buffer; bytes that arrived together with the answer's head sit in that
// buffer and are lost. It happens against the Docker engine too whenever
// the client reads the head late (a loaded machine), and cost an exec its
// first output line now and then in docker-py's own suite. Writing the
// stream only once the client has read the head removes the race for
// clients on a unix socket (the forwarder's and the dev socket's).
package sockq

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// pollEvery is how often the socket's queue is looked at.
const pollEvery = time.Millisecond

// AwaitRead waits, at most max, until c's peer has read every byte
// written to c. It returns at once for a connection that is not a unix
// socket (a TCP peer's reads cannot be seen from here).
func AwaitRead(c net.Conn, max time.Duration) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(max)
	for {
		queued := 0
		cerr := raw.Control(func(fd uintptr) {
			queued, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		})
		if cerr != nil || err != nil || queued == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(pollEvery)
	}
}
