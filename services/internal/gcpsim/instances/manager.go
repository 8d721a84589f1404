package instances

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim/instnet"
	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

// LogSink receives instance log lines.
type LogSink interface {
	Append(logging.Entry)
}

// Config configures a Manager. Zero durations take the defaults.
type Config struct {
	// StateDir holds unpacked images (images/), instance bundles
	// (instances/) and runc's state (runc/).
	StateDir string
	// RuncPath is the runc binary; default /usr/sbin/runc.
	RuncPath string
	// IdleTimeout stops an instance idle this long; default 15 minutes.
	IdleTimeout time.Duration
	// QueueTimeout is how long a request waits for a busy revision at its
	// max instances before a 429; default 10 s.
	QueueTimeout time.Duration
	// StartupTimeout bounds a cold start (pull, unpack, listen); default 4 min.
	StartupTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL; default 10 s.
	StopGrace time.Duration
	// ColdStart is added to every new instance's start, and the image's
	// compressed size at PullBytesPerSecond (0: none) beside it: Google's
	// clock (gcpsim's delay profile). Zero: as fast as this machine.
	ColdStart          time.Duration
	PullBytesPerSecond int64
	// Copy makes every instance rootfs a full copy even where overlayfs works.
	Copy bool
	// Insecure pulls from every registry over plain http (loopback and
	// private-network registries always are).
	Insecure bool
	// Network says how instances reach the host (package instnet); its
	// HostPorts grow with AllowHostPort.
	Network instnet.Config
	// StorageDir holds the data of Cloud Run volumes (BucketDir, NFSDir).
	StorageDir string
	// Logs receives instance stdout/stderr lines; required.
	Logs LogSink
	// Logger receives the manager's own logs.
	Logger *slog.Logger
}

// Counts describe the manager's activity.
type Counts struct {
	Requests         int64 `json:"requests"`
	InstancesStarted int64 `json:"instancesStarted"`
	InstancesRunning int64 `json:"instancesRunning"`
	Timeouts         int64 `json:"timeouts"`
	Rejected         int64 `json:"rejected"`
}

// Info describes a live instance.
type Info struct {
	ID        string `json:"id"`
	Service   string `json:"service"`
	Revision  string `json:"revision"`
	Port      int    `json:"port"`
	Active    int    `json:"active"`
	Listening bool   `json:"listening"`
	// Netns is its network namespace's file (nsenter --net=NETNS).
	Netns string `json:"netns,omitempty"`
}

// Manager runs the instances of every revision. Close stops them all.
type Manager struct {
	cfg      Config
	logger   *slog.Logger
	runcRoot string
	images   *imageCache
	nets     *instnet.Pool
	overlay  bool

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // instance lifecycles and kills

	mu        sync.Mutex
	pools     map[string]*pool
	retired   map[string]bool
	closed    bool
	hostPorts []int // Network.HostPorts and those allowed since

	requests, started, timeouts, rejected atomic.Int64
}

// New prepares the state directory, removes what an earlier run left
// behind (runc containers, mounts, bundles) and returns a Manager. runc is
// needed only when an instance starts.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("instances: StateDir is required")
	}
	if cfg.Logs == nil {
		return nil, errors.New("instances: Logs is required")
	}
	if cfg.RuncPath == "" {
		cfg.RuncPath = "/usr/sbin/runc"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 10 * time.Second
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 4 * time.Minute
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("instances: state dir: %w", err)
	}
	cfg.StateDir = abs
	m := &Manager{
		cfg: cfg, logger: cfg.Logger,
		runcRoot: filepath.Join(abs, "runc"),
		images:   newImageCache(filepath.Join(abs, "images"), cfg.Insecure, cfg.Logger),
		pools:    map[string]*pool{},
		retired:  map[string]bool{},
	}
	m.hostPorts = slices.Clone(cfg.Network.HostPorts)
	for _, d := range []string{m.runcRoot, m.images.dir, m.instancesRoot()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("instances: %w", err)
		}
	}
	m.removeLeftovers()
	if m.nets, err = instnet.NewPool(filepath.Join(abs, "nets"), cfg.Network, cfg.Logger); err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	m.overlay = !cfg.Copy && overlaySupported(m.instancesRoot())
	m.logger.Debug("instance manager started", "overlay", m.overlay, "stateDir", abs)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// coldStart is the simulated start time of a new instance of img.
func (m *Manager) coldStart(img *image) time.Duration {
	d := m.cfg.ColdStart
	if r := m.cfg.PullBytesPerSecond; r > 0 && img.Size > 0 {
		d += time.Duration(float64(img.Size) / float64(r) * float64(time.Second))
	}
	return d
}

func (m *Manager) instancesRoot() string        { return filepath.Join(m.cfg.StateDir, "instances") }
func (m *Manager) instanceDir(id string) string { return filepath.Join(m.instancesRoot(), id) }

// Overlay reports whether instance root filesystems are overlay mounts.
func (m *Manager) Overlay() bool { return m.overlay }

// AllowHostPort makes port of the host's loopback reachable from instances
// that start from now on (at 127.0.0.1 and [::1], as on the host).
func (m *Manager) AllowHostPort(port int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.hostPorts, port) {
		m.hostPorts = append(m.hostPorts, port)
	}
}

// HostPorts lists the host ports that new instances reach.
func (m *Manager) HostPorts() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(slices.Values(m.hostPorts))
}

// openNet makes the network of a new instance.
func (m *Manager) openNet() (*instnet.Net, error) {
	return m.nets.Open(m.HostPorts())
}

// removeLeftovers deletes runc containers, mounts and bundles of an earlier
// run of gcpsim on the same state directory (NewPool removes its networks).
func (m *Manager) removeLeftovers() {
	if _, err := exec.LookPath(m.cfg.RuncPath); err == nil {
		out, err := exec.Command(m.cfg.RuncPath, "--root", m.runcRoot, "list", "-q").Output()
		if err == nil {
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command(m.cfg.RuncPath, "--root", m.runcRoot, "delete", "--force", id).Run()
				m.logger.Info("removed leftover instance", "instance", id)
			}
		}
	}
	if err := unmountUnder(m.instancesRoot()); err != nil {
		m.logger.Warn("unmount leftover instances", "err", err)
	}
	entries, _ := os.ReadDir(m.instancesRoot())
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(m.instancesRoot(), e.Name()))
	}
}

// track registers a goroutine with the manager unless it is closing.
func (m *Manager) track() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	return true
}

// Counts returns activity counters.
func (m *Manager) Counts() Counts {
	c := Counts{
		Requests: m.requests.Load(), InstancesStarted: m.started.Load(),
		Timeouts: m.timeouts.Load(), Rejected: m.rejected.Load(),
	}
	c.InstancesRunning = int64(len(m.Instances()))
	return c
}

// Instances lists the live instances.
func (m *Manager) Instances() []Info {
	m.mu.Lock()
	pools := make([]*pool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	var out []Info
	for _, p := range pools {
		p.mu.Lock()
		for _, in := range p.instances {
			info := Info{ID: in.id, Service: in.rev.Service, Revision: in.rev.Name, Port: in.port, Active: in.active, Listening: in.listening}
			if in.listening {
				info.Netns = in.net.Path()
			}
			out = append(out, info)
		}
		p.mu.Unlock()
	}
	return out
}

// Warm starts rev's min instances (scaling.min_instance_count) without a
// request, and keeps them: an instance that ends is replaced.
func (m *Manager) Warm(rev *run.Revision) {
	m.mu.Lock()
	if m.closed || m.retired[poolKey(rev)] {
		m.mu.Unlock()
		return
	}
	p, ok := m.pools[poolKey(rev)]
	if !ok {
		p = newPool(m, poolKey(rev), rev)
		m.pools[poolKey(rev)] = p
	}
	m.mu.Unlock()
	p.ensureMin()
}

// Prefetch pulls and unpacks image in the background, as a revision that
// runs it starts deploying, so that its first instance finds it unpacked.
// Google's clock is unchanged: every cold start still takes the profile's
// pull time (Config.PullBytesPerSecond); this only keeps gcpsim's own
// unpacking off the path a request waits on. A failure is left for the
// instance's start to report.
func (m *Manager) Prefetch(image string) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		if _, err := m.images.get(m.ctx, image); err != nil && m.ctx.Err() == nil {
			m.logger.Debug("prefetch failed; the first instance pulls again", "image", image, "err", err)
		}
	}()
}

func poolKey(rev *run.Revision) string { return rev.Service + "/revisions/" + rev.Name }

// Retire stops serving rev: its idle instances stop now, busy ones when
// their requests end.
func (m *Manager) Retire(rev *run.Revision) {
	m.mu.Lock()
	p := m.pools[poolKey(rev)]
	delete(m.pools, poolKey(rev))
	m.retired[poolKey(rev)] = true
	m.mu.Unlock()
	if p != nil {
		m.logger.Debug("revision retired", "revision", rev.Name)
		p.retire(false)
	}
}

// Close stops every instance (SIGTERM, grace, SIGKILL) and waits until they
// are gone and cleaned up, or ctx ends.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	pools := m.pools
	m.pools = map[string]*pool{}
	m.mu.Unlock()
	m.cancel()
	for _, p := range pools {
		p.retire(true)
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); m.nets.Close(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("instances: close: %w", ctx.Err())
	}
}

// Serve proxies a request to an instance of rev (the request's path is
// already the path the instance should see), starting one if needed.
// Errors are answered as Google's front end does: 429 when no instance is
// available in time, 503 when an instance fails to start or ends during
// the request, 504 when the request timeout passes (the instance is then
// stopped).
func (m *Manager) Serve(w http.ResponseWriter, r *http.Request, rev *run.Revision) {
	m.requests.Add(1)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		http.Error(w, "Service Unavailable: shutting down", http.StatusServiceUnavailable)
		return
	}
	if m.retired[poolKey(rev)] {
		m.mu.Unlock()
		http.Error(w, "Service Unavailable: revision "+rev.Name+" no longer serves", http.StatusServiceUnavailable)
		return
	}
	p, ok := m.pools[poolKey(rev)]
	if !ok {
		p = newPool(m, poolKey(rev), rev)
		m.pools[poolKey(rev)] = p
	}
	m.mu.Unlock()

	// The body is read by at most one attempt: a retry happens only when
	// the connection to an instance could not even be made. An instance
	// that served before and refuses is on its way out (its process ends
	// after its last answer) and is stopped, so each refusal takes one
	// instance out of the pool and the retries end: the request reaches a
	// live instance or a new one, however many are ending at once.
	body := r.Body
	if body != nil {
		r.Body = io.NopCloser(body)
	}
	for attempt := 1; ; attempt++ {
		in, reused, err := p.acquire(r.Context(), rev)
		if err != nil {
			m.acquireFailed(w, r, err)
			return
		}
		if m.proxy(w, r, rev, p, in, reused || attempt < maxAttempts) {
			return
		}
	}
}

// maxAttempts bounds the new instances one request is offered to when they
// do not accept connections.
const maxAttempts = 3

// acquireFailed answers a request no instance could take.
func (m *Manager) acquireFailed(w http.ResponseWriter, r *http.Request, err error) {
	var se *startError
	switch {
	case errors.Is(err, errNoInstance):
		m.rejected.Add(1)
		http.Error(w, "Rate exceeded. The request was aborted because there was no available instance.", http.StatusTooManyRequests)
	case errors.As(err, &se):
		http.Error(w, "Service Unavailable: the instance failed to start; see the revision's logs", http.StatusServiceUnavailable)
	case r.Context().Err() != nil:
		// The client went away.
	default:
		http.Error(w, "Service Unavailable: "+err.Error(), http.StatusServiceUnavailable)
	}
}
