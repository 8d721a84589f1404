package netview

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// DNSAddr is where docker's embedded DNS server listens.
const DNSAddr = "127.0.0.11:53"

// Config configures a View.
type Config struct {
	// Dial opens a mesh stream (MeshPeer to a peer, MeshHost to the
	// client's machine) and returns it once the far side accepted; an
	// error means refused.
	Dial func(ctx context.Context, open proto.MeshOpen) (net.Conn, error)
	// Listening receives the TCP ports the container's processes listen
	// on, each time that set changes (nil: not watched).
	Listening func(ports []int)
	// Root is the container's file system root ("/" in production): the
	// view writes Root/etc/hosts and Root/etc/resolv.conf.
	Root string
	// Proc is the proc file system scanned for listening sockets
	// (default "/proc").
	Proc string
	// DNSAddr is where the embedded DNS server listens (default DNSAddr).
	DNSAddr string
	// ScanInterval is how often listening ports are scanned after a
	// change (default 250 ms); while none changes, the interval doubles
	// up to MaxScanInterval (default 1 s, at least ScanInterval).
	ScanInterval    time.Duration
	MaxScanInterval time.Duration
	// DiscoveredDelay is how long after the first view a peer's
	// discovered port (proto.ListenAddr.Discovered) waits before it is
	// bound, so the container's own servers bind theirs first (default
	// 3 s).
	DiscoveredDelay time.Duration
	Logger          *slog.Logger
}

// View is a container's network view in its instance.
type View struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	applied bool
	orig    resolvConf // the instance's own resolv.conf, read before the first write
	dns     *dnsServer
	peers   *listeners
	selfIPs map[string]bool
	// started is the first Apply; own are the ports the container's
	// processes listen on (the last scan); listen is the view's Listen;
	// later is set while a re-evaluation of deferred ports is due.
	started  time.Time
	own      map[int]bool
	listen   []proto.ListenAddr
	later    *time.Timer
	stopScan context.CancelFunc
	scanDone chan struct{}
}

// New returns a View; nothing changes in the instance until Apply.
func New(cfg Config) *View {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	if cfg.DNSAddr == "" {
		cfg.DNSAddr = DNSAddr
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 250 * time.Millisecond
	}
	if cfg.MaxScanInterval <= 0 {
		cfg.MaxScanInterval = time.Second
	}
	cfg.MaxScanInterval = max(cfg.MaxScanInterval, cfg.ScanInterval)
	if cfg.DiscoveredDelay <= 0 {
		cfg.DiscoveredDelay = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &View{cfg: cfg, log: cfg.Logger.With("component", "netview")}
	v.peers = newListeners(cfg.Dial, v.log)
	return v
}

func (v *View) path(p string) string { return filepath.Join(v.cfg.Root, p) }

// Apply makes the instance's network look like nv. It is idempotent; the
// first call reads the instance's own resolvers before anything is
// written, and starts watching listening ports.
func (v *View) Apply(ctx context.Context, nv proto.NetworkView) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return errors.New("network view closed")
	}
	if !v.applied {
		v.orig = readResolvConf(v.path("/etc/resolv.conf"))
		v.applied = true
		v.started = time.Now()
		v.startScan()
	}
	var errs []error
	dnsUp := false
	if nv.DNS {
		if v.dns == nil {
			d, err := startDNS(v.cfg.DNSAddr, v.log)
			if err != nil {
				// Without the server, names still resolve through
				// /etc/hosts (below), for programs that read it.
				v.log.Warn("embedded DNS server could not start; peers' names go into /etc/hosts", "addr", v.cfg.DNSAddr, "err", err)
			} else {
				v.dns = d
			}
		}
		if v.dns != nil {
			v.dns.set(nv.Names, v.upstreams(nv))
			dnsUp = true
		}
	} else if v.dns != nil {
		v.dns.close()
		v.dns = nil
	}
	if err := writeAtomic(v.path("/etc/hosts"), hostsFile(nv, !dnsUp)); err != nil {
		errs = append(errs, v.readOnly(err))
	}
	if rc, ok := v.resolvConf(nv, dnsUp); ok {
		if err := writeAtomic(v.path("/etc/resolv.conf"), rc); err != nil {
			errs = append(errs, v.readOnly(err))
		}
	}
	v.selfIPs = selfIPs(nv)
	v.listen = nv.Listen
	v.setListeners()
	return errors.Join(errs...)
}

// setListeners has the listeners of the view's Listen open, but a peer's
// discovered port that the container listens on itself, or before
// DiscoveredDelay has passed since the first view (then they are tried
// again once it has). The caller holds v.mu.
func (v *View) setListeners() {
	if v.closed {
		return
	}
	want := make([]proto.ListenAddr, 0, len(v.listen))
	deferred := false
	for _, la := range v.listen {
		if la.Discovered {
			if _, p, err := net.SplitHostPort(la.Addr); err == nil {
				if port, _ := strconv.Atoi(p); v.own[port] {
					continue
				}
			}
			if time.Since(v.started) < v.cfg.DiscoveredDelay {
				deferred = true
				continue
			}
		}
		want = append(want, la)
	}
	v.peers.set(want)
	if deferred && v.later == nil {
		v.later = time.AfterFunc(time.Until(v.started.Add(v.cfg.DiscoveredDelay)), func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			v.later = nil
			v.setListeners()
		})
	}
}

// upstreams are where names the view does not know go: --dns servers if
// given, else the instance's own resolvers.
func (v *View) upstreams(nv proto.NetworkView) []string {
	servers := nv.DNSServers
	if len(servers) == 0 {
		servers = v.orig.servers
	}
	var out []string
	for _, s := range servers {
		if a := net.JoinHostPort(s, "53"); a != v.cfg.DNSAddr {
			out = append(out, a)
		}
	}
	return out
}

// readOnly turns the error of writing a file the platform keeps read-only
// into a warning: the container runs with the platform's file, as it would
// without a view.
func (v *View) readOnly(err error) error {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		v.log.Warn("network view: file not writable here; the platform's stays", "err", err)
		return nil
	}
	return err
}

// Close stops the DNS server, the listeners and the scan. Files stay.
func (v *View) Close() error {
	v.mu.Lock()
	v.closed = true
	if v.later != nil {
		v.later.Stop()
	}
	stop, done := v.stopScan, v.scanDone
	if v.dns != nil {
		v.dns.close()
		v.dns = nil
	}
	v.mu.Unlock()
	v.peers.close()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}
