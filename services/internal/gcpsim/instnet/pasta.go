package instnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pastaReadyTimeout bounds how long pasta may take to set up a namespace.
const pastaReadyTimeout = 20 * time.Second

// pasta is the pasta process (Debian's passt package) that gives one
// namespace internet egress: a tap interface with the host's addresses and
// routes, whose traffic pasta carries through ordinary sockets of the
// host. It forwards no port either way (-t/-u/-T/-U none) and does not map
// the gateway to the host's loopback (--no-map-gw): an instance reaches
// the host's loopback only through the relays.
type pasta struct {
	cmd     *exec.Cmd
	pidFile string
	logFile string
	exited  chan struct{} // closed when the process has ended
	ready   chan struct{} // closed once set up or failed
	err     error         // why it failed, set before ready is closed
}

// startPasta starts pasta for the namespace at nsPath, with its pid and log
// files in dir. It returns at once; ready closes when the namespace is
// set up (pasta writes its pid file only then) or pasta failed.
func startPasta(bin, nsPath, dir string) (*pasta, error) {
	p := &pasta{
		pidFile: filepath.Join(dir, "pasta.pid"),
		logFile: filepath.Join(dir, "pasta.log"),
		exited:  make(chan struct{}),
		ready:   make(chan struct{}),
	}
	p.cmd = exec.Command(bin, "--foreground", "--quiet", "--netns", nsPath, "--config-net",
		"-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw",
		// As root without a user namespace, pasta can join the
		// namespace only as root; it still drops its other capabilities
		// and sandboxes itself.
		"--runas", "0",
		"--pid", p.pidFile, "--log-file", p.logFile)
	// No Pdeathsig: it fires when the forking thread ends, and threads
	// that entered a namespace do end. After a crash of gcpsim its next
	// start kills what is left (killLeftoverPasta).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pasta: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	go p.awaitReady()
	return p, nil
}

// awaitReady polls for the pid file, which pasta writes once the
// namespace's interface, addresses and routes are configured.
func (p *pasta) awaitReady() {
	defer close(p.ready)
	deadline := time.NewTimer(pastaReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(p.pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return
		}
		select {
		case <-p.exited:
			p.err = fmt.Errorf("pasta exited (%v): %s", p.cmd.ProcessState, p.logTail())
			return
		case <-deadline.C:
			p.err = fmt.Errorf("pasta did not set up the namespace within %s: %s", pastaReadyTimeout, p.logTail())
			return
		case <-tick.C:
		}
	}
}

// logTail is the end of pasta's log, for an error.
func (p *pasta) logTail() string {
	b, _ := os.ReadFile(p.logFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}

// stop ends pasta and waits for it.
func (p *pasta) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// killLeftoverPasta kills the pasta that an earlier gcpsim started for the
// namespace at nsPath, found through its pid file in dir: only if that
// process is still a pasta serving nsPath (a pid may have been reused).
func killLeftoverPasta(dir, nsPath string) {
	b, err := os.ReadFile(filepath.Join(dir, "pasta.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !servesNetns(cmdline, nsPath) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// servesNetns reports whether a /proc cmdline is pasta's for nsPath.
func servesNetns(cmdline []byte, nsPath string) bool {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if base := filepath.Base(args[0]); !strings.Contains(base, "pasta") && !strings.Contains(base, "passt") {
		return false
	}
	for i, a := range args {
		if a == "--netns" && i+1 < len(args) && args[i+1] == nsPath {
			return true
		}
	}
	return false
}

// ErrEgressOff says instances have no internet egress by configuration
// (Config.Pasta is empty).
var ErrEgressOff = errors.New("internet egress is off")
