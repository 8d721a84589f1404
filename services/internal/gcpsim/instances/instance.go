package instances

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim/instnet"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

// maxLogLine is the longest log entry; longer lines are split.
const maxLogLine = 256 << 10

// instance is one runc container serving requests of a revision. Fields
// after "guarded by pool.mu" belong to its pool's lock.
type instance struct {
	id   string
	rev  *run.Revision
	m    *Manager
	pool *pool

	port      int
	dir       string
	bundle    string
	net       *instnet.Net // its network namespace; set by launch
	cmd       *exec.Cmd
	transport *http.Transport

	launched chan struct{} // closed when launch has returned (cmd is set if it succeeded)
	ready    chan struct{} // closed once listening, or when start failed
	startErr error         // set before ready is closed
	exited   chan struct{} // closed when the container's process has ended
	gone     chan struct{} // closed after cleanup
	exitCode int           // set before exited is closed
	stopOnce sync.Once
	readers  sync.WaitGroup

	tailMu sync.Mutex
	tail   []string // the last lines of output, for start failure reports

	// guarded by pool.mu
	active    int
	listening bool
	stopping  bool
	removed   bool
	idleTimer *time.Timer
}

// run is the instance's lifecycle goroutine: start the container, wait for
// it to listen on PORT, wait for it to end, clean up. The Manager owns it.
func (i *instance) run(ctx context.Context) {
	defer i.m.wg.Done()
	defer close(i.gone)
	defer i.pool.removeInstance(i)

	err := i.launch(ctx)
	close(i.launched)
	if err != nil {
		i.m.nets.Refill()
		i.failStart(err)
		i.cleanup()
		return
	}
	go func() {
		err := i.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			i.exitCode = ee.ExitCode()
		default:
			i.exitCode = -1
		}
		close(i.exited)
	}()

	err = i.awaitListening(ctx)
	i.m.nets.Refill() // the start no longer competes with the next network
	if err != nil {
		i.awaitOutput(time.Second)
		i.failStart(err)
		i.stop()
	} else {
		i.pool.markListening(i)
		close(i.ready)
		i.m.logger.Debug("instance listening", "instance", i.id, "revision", i.rev.Name, "port", i.port)
	}
	<-i.exited
	i.m.logger.Debug("instance exited", "instance", i.id, "revision", i.rev.Name, "code", i.exitCode)
	switch code := i.exitCode; {
	case code > 128:
		i.system("WARNING", fmt.Sprintf("Container terminated on signal %d.", code-128))
	case code > 0:
		i.system("WARNING", fmt.Sprintf("Container called exit(%d).", code))
	case code == 0:
		i.system("INFO", "Container called exit(0).")
	}
	i.cleanup()
}

// hasExited reports whether the container's process has ended.
func (i *instance) hasExited() bool {
	select {
	case <-i.exited:
		return true
	default:
		return false
	}
}

// awaitOutput waits up to d for the container's output to be read to its end.
func (i *instance) awaitOutput(d time.Duration) {
	done := make(chan struct{})
	go func() { i.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (i *instance) failStart(err error) {
	i.startErr = err
	i.tailMu.Lock()
	tail := strings.Join(i.tail, "\n")
	i.tailMu.Unlock()
	i.m.logger.Warn("instance failed to start", "instance", i.id, "revision", i.rev.Name, "err", err, "output", tail)
	i.system("ERROR", "The instance failed to start: "+err.Error())
	close(i.ready)
}

// launch pulls the image, prepares the bundle and starts `runc run`.
func (i *instance) launch(ctx context.Context) error {
	if _, err := exec.LookPath(i.m.cfg.RuncPath); err != nil {
		return fmt.Errorf("runc unavailable: %w", err)
	}
	// Google's clock (gcpsim's delay profile): the entrypoint starts no
	// sooner than the cold start and the image's pull after the instance
	// was asked for. gcpsim's own work (pull, unpack, bundle, network) is
	// done within that time, not added to it: it stands for Google's.
	asked := time.Now()
	img, err := i.pool.image(ctx)
	if err != nil {
		return err
	}
	coldStartOver := asked.Add(i.m.coldStart(img))
	i.bundle = filepath.Join(i.dir, "bundle")
	rootfs := filepath.Join(i.bundle, "rootfs")
	if err := os.MkdirAll(i.bundle, 0o700); err != nil {
		return fmt.Errorf("bundle dir: %w", err)
	}
	// The network first: its link to the egress namespace sets up while
	// the rest is prepared.
	if i.net, err = i.m.openNet(); err != nil {
		return fmt.Errorf("instance network: %w", err)
	}
	if err := makeRootfs(img.Rootfs, i.dir, rootfs, i.m.overlay); err != nil {
		return fmt.Errorf("instance rootfs: %w", err)
	}
	if err := writeEtcFiles(rootfs, i.net.ResolvConf(), i.net.Hosts()); err != nil {
		return fmt.Errorf("instance rootfs: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	i.port = port
	p, err := i.process(img, rootfs)
	if err != nil {
		return err
	}
	p.Netns = i.net.Path()
	spec := newSpec(p)
	if err := i.applyRevision(&spec); err != nil {
		return err
	}
	if err := writeSpec(i.bundle, spec); err != nil {
		return err
	}

	if d := time.Until(coldStartOver); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd := exec.Command(i.m.cfg.RuncPath, "--root", i.m.runcRoot, "run", "--bundle", i.bundle, i.id)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("start runc: %w", err)
	}
	i.cmd = cmd
	i.readers.Add(2)
	go i.readLog(outR, "stdout")
	go i.readLog(errR, "stderr")
	i.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return i.dialPort(ctx)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: max(i.rev.Concurrency, 2),
		IdleConnTimeout:     90 * time.Second,
	}
	i.m.started.Add(1)
	return nil
}

// process merges the image config with the revision: Command/Args override
// Entrypoint/Cmd as in Kubernetes; the revision's env overrides the
// image's; PORT and Cloud Run's K_* variables are set.
func (i *instance) process(img *image, rootfs string) (processSpec, error) {
	cfg := img.Config
	var args []string
	switch {
	case len(i.rev.Command) > 0:
		args = append(append(args, i.rev.Command...), i.rev.Args...)
	case len(i.rev.Args) > 0:
		args = append(append(args, cfg.Entrypoint...), i.rev.Args...)
	default:
		args = append(append(args, cfg.Entrypoint...), cfg.Cmd...)
	}
	if len(args) == 0 {
		return processSpec{}, errors.New("the image has no entrypoint or command and the revision sets none")
	}
	user, home, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return processSpec{}, err
	}
	env := newEnv()
	env.set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	env.set("HOME=" + home)
	for _, e := range cfg.Env {
		env.set(e)
	}
	for _, e := range i.rev.Env {
		env.set(e)
	}
	env.set("PORT=" + strconv.Itoa(i.port))
	env.set("K_SERVICE=" + i.rev.ServiceID)
	env.set("K_REVISION=" + i.rev.Name)
	env.set("K_CONFIGURATION=" + i.rev.ServiceID)
	cwd := i.rev.WorkingDir
	if cwd == "" {
		cwd = cfg.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if p, err := securePath(rootfs, cwd); err == nil {
		_ = os.MkdirAll(p, 0o755)
	}
	return processSpec{Args: args, Env: env.list(), Cwd: cwd, User: user, Hostname: i.id}, nil
}

// dialPort connects to the instance's PORT inside its network namespace.
func (i *instance) dialPort(ctx context.Context) (net.Conn, error) {
	return i.net.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(i.port)))
}

// awaitListening polls the instance's port until it accepts a connection
// (a TCP startup probe), the process exits, or the startup timeout passes;
// then it waits for the instance's internet egress (an instance without
// one still serves: it reaches the host's loopback through its relays).
func (i *instance) awaitListening(ctx context.Context) error {
	deadline := time.NewTimer(i.m.cfg.StartupTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		probeCtx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := i.dialPort(probeCtx)
		cancel()
		if err == nil {
			c.Close()
			i.awaitEgress(ctx)
			return nil
		}
		select {
		case <-i.exited:
			return fmt.Errorf("container exited with code %d before listening on PORT %d", i.exitCode, i.port)
		case <-deadline.C:
			return fmt.Errorf("container did not listen on PORT %d within %s", i.port, i.m.cfg.StartupTimeout)
		case <-ctx.Done():
			return fmt.Errorf("gcpsim shutting down: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// awaitEgress waits for the instance's internet egress; if it has none
// although it should, the instance's log and gcpsim's say why.
func (i *instance) awaitEgress(ctx context.Context) {
	err := i.net.AwaitEgress(ctx)
	if err == nil || errors.Is(err, instnet.ErrEgressOff) || ctx.Err() != nil {
		return
	}
	i.m.logger.Warn("instance has no internet egress", "instance", i.id, "revision", i.rev.Name, "err", err)
	i.system("WARNING", "The instance has no internet egress: "+err.Error())
}

// stop ends the instance once: SIGTERM, a grace period, SIGKILL. It
// returns at once; the lifecycle goroutine cleans up after the exit.
func (i *instance) stop() {
	i.stopOnce.Do(func() {
		if !i.m.track() {
			// Closing: Close waits for the lifecycle goroutine, which
			// ends only after this kill has made the process exit.
			go i.kill()
			return
		}
		go func() {
			defer i.m.wg.Done()
			i.kill()
		}()
	})
}

func (i *instance) kill() {
	<-i.launched
	if i.cmd == nil {
		return
	}
	select {
	case <-i.exited:
		return
	default:
	}
	i.runc("kill", i.id, "TERM")
	grace := time.NewTimer(i.m.cfg.StopGrace)
	defer grace.Stop()
	select {
	case <-i.exited:
		return
	case <-grace.C:
	}
	i.runc("kill", "--all", i.id, "KILL")
	select {
	case <-i.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = i.cmd.Process.Kill()
}

// runc runs a runc subcommand on this manager's state root; failures are
// logged at debug level (the container may already be gone).
func (i *instance) runc(args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, i.m.cfg.RuncPath, append([]string{"--root", i.m.runcRoot}, args...)...).CombinedOutput()
	if err != nil {
		i.m.logger.Debug("runc", "args", strings.Join(args, " "), "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// cleanup removes the container, waits for its output, unmounts and
// deletes the instance's directory.
func (i *instance) cleanup() {
	if i.cmd != nil {
		i.runc("delete", "--force", i.id)
		i.awaitOutput(5 * time.Second)
	}
	if i.transport != nil {
		i.transport.CloseIdleConnections()
	}
	if i.net != nil {
		if err := i.net.Close(); err != nil {
			i.m.logger.Warn("remove instance network", "instance", i.id, "err", err)
		}
	}
	if err := unmountUnder(i.dir); err != nil {
		i.m.logger.Warn("unmount instance rootfs", "instance", i.id, "err", err)
	}
	if err := os.RemoveAll(i.dir); err != nil {
		i.m.logger.Warn("remove instance dir", "instance", i.id, "err", err)
	}
}
