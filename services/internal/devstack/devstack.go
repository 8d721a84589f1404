// Package devstack finds or starts the gcpsim of a --dev control plane: as
// its own process when a gcpsim binary is at hand (it and its instances
// outlive a control plane crash, as Google does), else in-process. It is
// the one package outside tests and cmd/ that imports gcpsim: the control
// plane gets it as a hook (controlplane.Config.DevSim), so the hosted code
// never depends on the simulation.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
	"github.com/sockerless/sockerless/services/internal/settings"
)

// errNoSimBinary says there is no gcpsim binary to start as its own process.
var errNoSimBinary = errors.New("no gcpsim binary")

// simStartTimeout bounds how long a new gcpsim process may take to serve.
const simStartTimeout = time.Minute

// Options say where and how the dev gcpsim runs.
type Options struct {
	// StateDir is gcpsim's own state directory.
	StateDir string
	// Binary is the gcpsim to start as its own process; default: gcpsim
	// next to this executable (in-process if there is none).
	Binary string
	// CallbackURL is the control plane's hub as instances dial it; its
	// loopback port is relayed into every instance.
	CallbackURL string
	// OperationDelay is how long create/update operations take (fast profile).
	OperationDelay time.Duration
	// Profile is gcpsim's delay profile ("fast" or "google"); TimeScale
	// multiplies its delays (0: 1).
	Profile   string
	TimeScale float64
}

// Start finds the gcpsim that serves opts.StateDir, or starts one, and
// returns where it serves and what ends it (nothing for a separate
// process, which lives on).
func Start(ctx context.Context, opts Options, log *slog.Logger) (gcpsim.Endpoint, func() error, error) {
	ep, err := opts.devSim(ctx, log)
	if !errors.Is(err, errNoSimBinary) {
		return ep, func() error { return nil }, err
	}
	log.Warn("no gcpsim binary next to the control plane: running it in-process, so its instances end with the control plane", "setting", settings.Ref(settings.GCPSimBinary))
	prof, err := gcpsim.ProfileNamed(opts.Profile, opts.OperationDelay)
	if err != nil {
		return gcpsim.Endpoint{}, nil, err
	}
	sim, err := gcpsim.Start(context.WithoutCancel(ctx), gcpsim.Config{
		Profile:        prof.Scaled(opts.TimeScale),
		StateDir:       opts.StateDir,
		OperationDelay: opts.OperationDelay,
		HostPorts:      callbackHostPorts(opts.CallbackURL),
		Logger:         log.With("component", "gcpsim"),
	})
	if err != nil {
		return gcpsim.Endpoint{}, nil, fmt.Errorf("start gcpsim: %w", err)
	}
	return sim.Endpoint(), sim.Close, nil
}

// devSim finds the gcpsim that serves this state directory, or starts one
// as its own process (its own session, so a kill of the control plane's
// process group spares it): like Google, it and its function instances
// outlive a control plane crash, and a control plane restarted on the same
// --state-dir reuses it. It returns errNoSimBinary if no gcpsim binary is
// at hand (a bare `go run`): Start then runs gcpsim in-process.
func (cfg *Options) devSim(ctx context.Context, log *slog.Logger) (gcpsim.Endpoint, error) {
	dir := cfg.StateDir
	epFile := filepath.Join(dir, "endpoint.json")
	hostPorts := callbackHostPorts(cfg.CallbackURL)
	if ep, err := gcpsim.ReadEndpoint(epFile); err == nil && ep.Alive(ctx) {
		// It may have been started for another callback port.
		if err := ep.AllowHostPorts(ctx, hostPorts); err != nil {
			return gcpsim.Endpoint{}, fmt.Errorf("running gcpsim (pid %d): %w", ep.PID, err)
		}
		log.Info("reusing the running gcpsim", "pid", ep.PID, "grpc", ep.GRPC)
		return ep, nil
	}
	bin := cfg.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return gcpsim.Endpoint{}, errNoSimBinary
		}
		bin = filepath.Join(filepath.Dir(exe), "gcpsim")
		if _, err := os.Stat(bin); err != nil {
			return gcpsim.Endpoint{}, errNoSimBinary
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return gcpsim.Endpoint{}, fmt.Errorf("gcpsim state dir: %w", err)
	}
	_ = os.Remove(epFile) // a dead gcpsim's
	logPath := filepath.Join(dir, "gcpsim.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return gcpsim.Endpoint{}, fmt.Errorf("gcpsim log: %w", err)
	}
	defer logf.Close()
	args := []string{"--state-dir", dir, "--endpoint-file", epFile, "--operation-delay", cfg.OperationDelay.String()}
	if cfg.Profile != "" {
		args = append(args, "--profile", cfg.Profile)
	}
	if cfg.TimeScale > 0 {
		args = append(args, "--time-scale", strconv.FormatFloat(cfg.TimeScale, 'g', -1, 64))
	}
	for _, p := range hostPorts {
		args = append(args, "--host-port", strconv.Itoa(p))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return gcpsim.Endpoint{}, fmt.Errorf("start gcpsim %s (%s): %w", bin, settings.Ref(settings.GCPSimBinary), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(simStartTimeout)
	for {
		select {
		case err := <-exited:
			return gcpsim.Endpoint{}, fmt.Errorf("gcpsim exited before serving (%v): %s", err, lastLines(logPath, 5))
		case <-deadline:
			_ = cmd.Process.Kill()
			return gcpsim.Endpoint{}, fmt.Errorf("gcpsim did not serve within %s: %s", simStartTimeout, lastLines(logPath, 5))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return gcpsim.Endpoint{}, ctx.Err()
		case <-tick.C:
			if ep, err := gcpsim.ReadEndpoint(epFile); err == nil && ep.PID == cmd.Process.Pid {
				log.Info("started gcpsim as its own process", "pid", ep.PID, "grpc", ep.GRPC, "log", logPath)
				return ep, nil
			}
		}
	}
}

// callbackHostPorts returns the port of a callback URL on the host's
// loopback, which function instances (each in its own network namespace)
// reach only through gcpsim's relays, at 127.0.0.1 and [::1]: for a host
// of 127.0.0.1, ::1, localhost, or a wildcard address (a listener's own
// address may show one; dialled, it is the loopback). None for another
// host, which instances reach through their internet egress.
func callbackHostPorts(callback string) []int {
	u, err := url.Parse(callback)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	switch host := u.Hostname(); host {
	case "localhost", "127.0.0.1", "::1", "0.0.0.0", "::":
	default:
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" || u.Scheme == "https" {
			port = "443"
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil
	}
	return []int{p}
}

// lastLines returns the last n lines of the file at path, for an error.
func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
