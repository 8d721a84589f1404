package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// Config configures a Supervisor.
type Config struct {
	// PasswdPath and GroupPath are the user and group databases of the
	// filesystem the process runs in (default /etc/passwd, /etc/group).
	PasswdPath string
	GroupPath  string
	// DrainGrace is how long an output read may wait for data after the
	// main process has exited before the stream counts as ended (a stray
	// process holding the pipe open). Default 2s.
	DrainGrace time.Duration
	Logger     *slog.Logger
}

// Supervisor starts processes and is the only waiter for children of this
// process. Its Run must be running for processes to be reaped.
type Supervisor struct {
	cfg Config

	mu      sync.Mutex
	started bool          // Run has been called
	stopped bool          // Run has ended; no more processes
	procs   map[int]*Proc // started and not yet reaped, by pid
	kick    chan struct{}
}

// ErrStopped is returned by Start once the Supervisor's Run has ended.
var ErrStopped = errors.New("process supervisor has stopped")

// New returns a Supervisor. Processes may be started at once; they are
// reaped once Run runs.
func New(cfg Config) *Supervisor {
	if cfg.PasswdPath == "" {
		cfg.PasswdPath = "/etc/passwd"
	}
	if cfg.GroupPath == "" {
		cfg.GroupPath = "/etc/group"
	}
	if cfg.DrainGrace <= 0 {
		cfg.DrainGrace = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{cfg: cfg, procs: map[int]*Proc{}, kick: make(chan struct{}, 1)}
}

// Run reaps children until ctx ends: the processes it started (their status
// goes to their Proc) and any orphan adopted as PID 1 or subreaper. When ctx
// ends it kills the processes still running, collects them and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := setSubreaper(); err != nil {
		s.cfg.Logger.Warn("cannot become child subreaper", "err", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("process supervisor already running")
	}
	s.started = true
	s.mu.Unlock()

	tick := time.NewTicker(time.Second) // in case a SIGCHLD is coalesced away
	defer tick.Stop()
	for {
		s.reapAll()
		select {
		case <-ctx.Done():
			s.stop()
			return nil
		case <-sigs:
		case <-s.kick:
		case <-tick.C:
		}
	}
}

// stop refuses new processes, kills the remaining ones and collects them.
func (s *Supervisor) stop() {
	s.mu.Lock()
	s.stopped = true
	left := make([]*Proc, 0, len(s.procs))
	for pid, p := range s.procs {
		p.exiting = true
		delete(s.procs, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		left = append(left, p)
	}
	s.mu.Unlock()
	for _, p := range left {
		ws, err := reap(p.pid)
		if err != nil {
			s.cfg.Logger.Warn("collect process at stop", "pid", p.pid, "err", err)
		}
		p.finish(ws)
	}
}

// reapAll collects every exited child without blocking. The reap and the
// lookup of its Proc happen under mu, which Start holds across fork+register
// and Signal across its check+kill: so a status always reaches its Proc, and
// a signal never reaches a pid that has been reaped (and maybe reused).
func (s *Supervisor) reapAll() {
	for {
		var ws syscall.WaitStatus
		s.mu.Lock()
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		var p *Proc
		if pid > 0 {
			if p = s.procs[pid]; p != nil {
				p.exiting = true
				delete(s.procs, pid)
			}
		}
		s.mu.Unlock()
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			return
		case err != nil:
			s.cfg.Logger.Warn("wait4", "err", err)
			return
		case pid <= 0:
			return
		case p != nil:
			p.finish(ws)
		default:
			s.cfg.Logger.Debug("reaped orphan", "pid", pid)
		}
	}
}

// Start runs p: Args[0] resolved through p's own PATH, in Dir (created if
// missing, default "/"), as User, with Env exactly as given (plus HOME from
// passwd when Env has none). The process runs in its own process group (or
// session, with a tty) so that whatever it leaves behind can be killed when
// it exits, as docker does when a container's init ends. It returns a
// *StartError (code 126 or 127, docker's message) if the process cannot be
// started.
func (s *Supervisor) Start(p proto.Process) (*Proc, error) {
	return s.StartSized(p, Size{})
}

// StartSized is Start with the initial terminal size of a TTY process.
func (s *Supervisor) StartSized(p proto.Process, size Size) (*Proc, error) {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return nil, cannotExec("no command specified")
	}
	dir := p.Dir
	if dir == "" {
		dir = "/"
	}
	cred, err := ResolveUser(p.User, s.cfg.PasswdPath, s.cfg.GroupPath)
	if err == nil {
		err = AddGroups(&cred, p.GroupAdd, s.cfg.GroupPath)
	}
	if err != nil {
		return nil, cannotExec("%s", err.Error())
	}
	env := append([]string(nil), p.Env...)
	if _, ok := envValue(env, "HOME"); !ok {
		env = append(env, "HOME="+cred.Home)
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path, err := lookPath(p.Args[0], env, dir)
	if err != nil {
		return nil, err
	}
	sio, err := newStdio(p.Tty, p.OpenStdin, size)
	if err != nil {
		return nil, fmt.Errorf("set up stdio: %w", err)
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if p.Tty {
		attr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	if needsSwitch(cred) {
		attr.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: cred.Groups}
	}

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		sio.closeAll()
		return nil, ErrStopped
	}
	pid, err := syscall.ForkExec(path, p.Args, &syscall.ProcAttr{Dir: dir, Env: env, Files: sio.childFds(), Sys: attr})
	if err != nil {
		s.mu.Unlock()
		sio.closeAll()
		return nil, execError(p.Args[0], err)
	}
	proc := newProc(s, pid, sio)
	s.procs[pid] = proc
	s.mu.Unlock()

	sio.closeChild()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return proc, nil
}

// signal delivers sig to p's pid unless p has already exited.
func (s *Supervisor) signal(p *Proc, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.exiting {
		return ErrExited
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("signal %d to pid %d: %w", sig, p.pid, err)
	}
	return nil
}

// ensureDir creates the working directory if it is missing, as docker does
// for WorkingDir.
func ensureDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return cannotExec("chdir to cwd (%q) set in config.json failed: not a directory", dir)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return cannotExec("mkdir %s: %s", dir, errText(err))
		}
		return nil
	default:
		return cannotExec("stat %s: %s", dir, errText(err))
	}
}

// needsSwitch reports whether cred differs from the agent's own identity.
// Staying as we are needs no privilege, so a root process in a sandbox
// without CAP_SETGID can still run as root.
func needsSwitch(cred Credential) bool {
	if cred.UID != uint32(os.Getuid()) || cred.GID != uint32(os.Getgid()) {
		return true
	}
	cur, err := os.Getgroups()
	if err != nil {
		return true
	}
	have := map[uint32]bool{}
	for _, g := range cur {
		have[uint32(g)] = true
	}
	want := map[uint32]bool{}
	for _, g := range cred.Groups {
		want[g] = true
	}
	if len(have) != len(want) {
		return true
	}
	for g := range want {
		if !have[g] {
			return true
		}
	}
	return false
}
