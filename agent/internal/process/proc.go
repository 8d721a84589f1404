package process

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrExited is returned by Signal for a process that has already exited.
var ErrExited = errors.New("process already exited")

// Status is how a process ended, as docker reports it.
type Status struct {
	// Code is the exit status, or 128+signal if a signal killed it.
	Code int
	// Signal is the signal that killed it, 0 if it exited.
	Signal int
}

func statusOf(ws syscall.WaitStatus) Status {
	switch {
	case ws.Exited():
		return Status{Code: ws.ExitStatus()}
	case ws.Signaled():
		return Status{Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}
	}
	return Status{Code: 128}
}

// Proc is a process started by a Supervisor.
type Proc struct {
	sup    *Supervisor
	pid    int
	stdout *outReader
	stderr *outReader
	stdin  *stdinWriter
	// consumed: see SetStdinConsumed.
	consumed func(n int)
	files    []*os.File
	log      *slog.Logger

	exiting bool // guarded by sup.mu: reaped or about to be
	done    chan struct{}
	status  Status

	closeOnce sync.Once
	master    *os.File // pty master of a TTY process
}

func newProc(s *Supervisor, pid int, sio *stdio) *Proc {
	p := &Proc{sup: s, pid: pid, done: make(chan struct{}), log: s.cfg.Logger.With("pid", pid)}
	p.stdout = &outReader{f: sio.stdout, grace: s.cfg.DrainGrace, exited: p.done}
	if sio.stderr != nil {
		p.stderr = &outReader{f: sio.stderr, grace: s.cfg.DrainGrace, exited: p.done}
	}
	if sio.stdin != nil {
		p.stdin = newStdinWriter(sio.stdin, sio.stdinIsOwned, p.log)
	}
	p.master = sio.master
	for _, f := range []*os.File{sio.stdout, sio.stderr, sio.stdin} {
		if f != nil {
			p.files = append(p.files, f)
		}
	}
	return p
}

// finish records the status of the reaped main process, kills what it left
// in its process group, and wakes the output readers' idle timeout.
func (p *Proc) finish(ws syscall.WaitStatus) {
	p.status = statusOf(ws)
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.log.Warn("kill leftover process group", "err", err)
	}
	close(p.done)
	p.stdout.mainExited()
	if p.stderr != nil {
		p.stderr.mainExited()
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.pid }

// Stdout reads the process's standard output (everything, with a tty). It
// returns io.EOF once the output has ended.
func (p *Proc) Stdout() io.Reader { return p.stdout }

// Stderr reads the process's standard error; nil with a tty.
func (p *Proc) Stderr() io.Reader {
	if p.stderr == nil {
		return nil
	}
	return p.stderr
}

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Status is how the process ended; valid once Done is closed.
func (p *Proc) Status() Status {
	<-p.done
	return p.status
}

// Signal delivers sig to the process (not its group, as docker does). It
// returns ErrExited if the process has already exited.
func (p *Proc) Signal(sig syscall.Signal) error { return p.sup.signal(p, sig) }

// Kill sends SIGKILL to the process and to its process group.
func (p *Proc) Kill() {
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, ErrExited) {
		p.log.Warn("kill", "err", err)
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

// WriteStdin queues b for the process's stdin; it never blocks. It is a
// no-op without OpenStdin.
func (p *Proc) WriteStdin(b []byte) {
	if p.stdin != nil {
		p.stdin.write(b)
		return
	}
	if fn := p.consumed; fn != nil && len(b) > 0 {
		fn(len(b))
	}
}

// SetStdinConsumed makes fn learn of every byte given to WriteStdin once it
// is written to the process or dropped (no stdin, stdin closed, process
// gone), so the sender can keep a bounded window of input in flight. Call
// it before the first WriteStdin; fn must not block.
func (p *Proc) SetStdinConsumed(fn func(n int)) {
	p.consumed = fn
	if p.stdin != nil {
		p.stdin.setConsumed(fn)
	}
}

// CloseStdin closes the process's stdin once the queued input is written.
func (p *Proc) CloseStdin() {
	if p.stdin != nil {
		p.stdin.closeAfterDrain()
	}
}

// Resize sets the terminal size of a TTY process; a no-op without a TTY.
func (p *Proc) Resize(size Size) error {
	if p.master == nil || size.Rows == 0 || size.Cols == 0 {
		return nil
	}
	rc, err := p.master.SyscallConn() // Fd() would make the master blocking
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols})
	}); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if ierr != nil {
		return fmt.Errorf("resize: %w", ierr)
	}
	return nil
}

// Close releases the agent's ends of the process's stdio. Call it once the
// output has been read to the end.
func (p *Proc) Close() {
	p.closeOnce.Do(func() {
		for _, f := range p.files {
			_ = f.Close() // also unblocks a stdin write into a full pipe or pty
		}
		if p.stdin != nil {
			p.stdin.stop()
		}
	})
}
