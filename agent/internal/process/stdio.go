package process

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Default size of a container's pseudo-terminal until a client resizes it.
const (
	defaultRows = 24
	defaultCols = 80
)

// stdio holds both ends of a process's standard streams while it starts.
type stdio struct {
	child        [3]*os.File // the child's stdin, stdout, stderr
	stdout       *os.File    // read end (the pty master with a tty)
	stderr       *os.File    // read end; nil with a tty
	stdin        *os.File    // write end (the pty master with a tty); nil without OpenStdin
	stdinIsOwned bool        // stdin is its own pipe, to be closed on StdinClose
	master       *os.File    // the pty master with a tty, for resizing; else nil
}

// Size is a terminal size; zero means the default 24×80.
type Size struct{ Rows, Cols uint16 }

// newStdio makes the pipes or the pseudo-terminal. Parent ends are pollable,
// so reads can time out and writes can be abandoned.
func newStdio(tty, openStdin bool, size Size) (*stdio, error) {
	if tty {
		return newPty(openStdin, size)
	}
	s := &stdio{}
	var err error
	fail := func(e error) (*stdio, error) {
		s.closeAll()
		return nil, e
	}
	if s.stdout, s.child[1], err = os.Pipe(); err != nil {
		return fail(err)
	}
	if s.stderr, s.child[2], err = os.Pipe(); err != nil {
		return fail(err)
	}
	if openStdin {
		if s.child[0], s.stdin, err = os.Pipe(); err != nil {
			return fail(err)
		}
		s.stdinIsOwned = true
	} else if s.child[0], err = os.Open(os.DevNull); err != nil {
		return fail(err)
	}
	return s, nil
}

func newPty(openStdin bool, size Size) (*stdio, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if size.Rows == 0 || size.Cols == 0 {
		size = Size{Rows: defaultRows, Cols: defaultCols}
	}
	if err := pty.Setsize(tty, &pty.Winsize{Rows: size.Rows, Cols: size.Cols}); err != nil {
		master.Close()
		tty.Close()
		return nil, fmt.Errorf("size pty: %w", err)
	}
	// pty.Open leaves the master in blocking mode; make a pollable copy so
	// reads honour deadlines and never pin a thread.
	pm, err := pollable(master)
	master.Close()
	if err != nil {
		tty.Close()
		return nil, err
	}
	s := &stdio{child: [3]*os.File{tty, tty, tty}, stdout: pm, master: pm}
	if openStdin {
		s.stdin = pm
	}
	return s, nil
}

// pollable returns a non-blocking duplicate of f that the runtime poller
// manages.
func pollable(f *os.File) (*os.File, error) {
	fd, err := dupCloexec(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("nonblock %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// childFds returns the child's descriptors 0, 1, 2, in blocking mode (Fd
// switches them), as programs expect.
func (s *stdio) childFds() []uintptr {
	return []uintptr{s.child[0].Fd(), s.child[1].Fd(), s.child[2].Fd()}
}

// closeChild closes the parent's copies of the child's ends once the child
// has them, so EOF arrives when the child (and its heirs) close theirs.
func (s *stdio) closeChild() {
	seen := map[*os.File]bool{}
	for i, f := range s.child {
		if f != nil && !seen[f] {
			seen[f] = true
			f.Close()
		}
		s.child[i] = nil
	}
}

func (s *stdio) closeAll() {
	s.closeChild()
	for _, f := range []*os.File{s.stdout, s.stderr, s.stdin} {
		if f != nil {
			f.Close()
		}
	}
}

// outReader reads a process's output. Once the main process has exited, a
// read that waits longer than grace for data ends the stream: only a stray
// process could still hold the pipe open, and docker would have killed it.
// EIO (a pty whose slave side is closed) is EOF too.
type outReader struct {
	f      *os.File
	grace  time.Duration
	exited chan struct{}

	// mu is held from a read out of the pipe until its data is delivered
	// (ReadTo), so Quiet, holding it, knows no output is in between.
	mu sync.Mutex
}

// ReadTo reads like Read and passes what it read to deliver before it
// lets go of the reader's lock: see Quiet. deliver must not keep b.
func (r *outReader) ReadTo(b []byte, deliver func([]byte)) (int, error) {
	rc, err := r.f.SyscallConn()
	if err != nil || !nonBlocking(rc) {
		// A descriptor the poller does not watch would block in the
		// lock: read it plainly (Quiet cannot vouch for it).
		n, err := r.Read(b)
		if n > 0 {
			deliver(b[:n])
		}
		return n, err
	}
	select {
	case <-r.exited:
		_ = r.f.SetReadDeadline(time.Now().Add(r.grace))
	default:
	}
	var (
		n    int
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		n, rerr = syscall.Read(int(fd), b)
		if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
			return false // wait until there is something to read
		}
		if n > 0 {
			deliver(b[:n])
		}
		return true
	})
	switch {
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return 0, io.EOF
	case err != nil:
		return 0, err
	case rerr != nil && errors.Is(rerr, syscall.EIO): // a pty whose slave side is closed
		return 0, io.EOF
	case rerr != nil:
		return 0, rerr
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}

// Quiet reports whether every byte the process wrote to this output so
// far has gone through ReadTo's deliver: the pipe is empty and no read is
// between the pipe and its delivery. It cannot tell for a descriptor
// ReadTo reads plainly, and says true.
func (r *outReader) Quiet() bool {
	rc, err := r.f.SyscallConn()
	if err != nil || !nonBlocking(rc) {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	queued := 0
	cerr := rc.Control(func(fd uintptr) {
		queued, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD: bytes waiting in a pipe or pty
	})
	return cerr != nil || err != nil || queued == 0
}

// nonBlocking reports whether the descriptor is in non-blocking mode (the
// runtime poller's), so a read of it never blocks.
func nonBlocking(rc syscall.RawConn) bool {
	nb := false
	_ = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nb = err == nil && fl&unix.O_NONBLOCK != 0
	})
	return nb
}

func (r *outReader) Read(b []byte) (int, error) {
	select {
	case <-r.exited:
		_ = r.f.SetReadDeadline(time.Now().Add(r.grace))
	default:
	}
	n, err := r.f.Read(b)
	if err != nil && (errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrDeadlineExceeded)) {
		err = io.EOF
	}
	return n, err
}

// mainExited arms the idle deadline for a read already blocked.
func (r *outReader) mainExited() {
	_ = r.f.SetReadDeadline(time.Now().Add(r.grace))
}
