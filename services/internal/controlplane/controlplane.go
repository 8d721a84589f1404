package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/agenthub"
	"github.com/sockerless/sockerless/services/internal/audit"
	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/authn"
	"github.com/sockerless/sockerless/services/internal/clientlink"
	"github.com/sockerless/sockerless/services/internal/dockerapi"
	"github.com/sockerless/sockerless/services/internal/dockersock"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
	"github.com/sockerless/sockerless/services/internal/functions/gcf"
	"github.com/sockerless/sockerless/services/internal/imageops"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/portbind"
	"github.com/sockerless/sockerless/services/internal/publish"
	"github.com/sockerless/sockerless/services/internal/wsconn"
	"google.golang.org/api/option"
)

// TunnelPath is where the forwarder opens WebSocket tunnels for hijacked
// streams (see package wsconn).
const TunnelPath = "/sockerless/v1/tunnel"

// Config is everything the control plane needs; cmd/controlplane fills it
// from flags and SOCKERLESS_* variables.
type Config struct {
	Dev      bool
	StateDir string
	// Store is "bolt" (embedded, one machine) or "firestore".
	Store           string
	Listen          []string
	Token           string
	RegistryMirrors map[string]string
	AgentBinary     string
	CallbackURL     string
	Linger          time.Duration
	BootTimeout     time.Duration
	OperationDelay  time.Duration
	// StoreLatency delays every call to the Firestore emulator (benchmarks).
	StoreLatency   time.Duration
	Project        string
	Region         string
	ServiceAccount string
	// GCPEndpoint points the Google clients at a running gcpsim (gRPC
	// host:port); empty with Dev finds or starts one (DevSim).
	GCPEndpoint string
	// GCPSimBinary is the gcpsim that Dev starts as its own process;
	// default: gcpsim next to this binary (in-process if there is none).
	GCPSimBinary string
	// SimProfile ("fast", "google") and SimTimeScale say how the dev
	// gcpsim keeps Google's clock (DevSim passes them on).
	SimProfile   string
	SimTimeScale float64
	// PoolSize is the number of stub functions kept ahead (package fleet).
	PoolSize int
	// MaxInstances bounds the instances (running containers) of one
	// image's function; 0 is gcf's default.
	MaxInstances int
	// PrewarmImages keep a warm instance of their function (min
	// instances 1: billed while idle).
	PrewarmImages []string
	// TargetRepo is where wrapped images are pushed.
	TargetRepo string
	// ExposeHostPorts are the ports of this machine that containers
	// created through the unix socket may reach as host.docker.internal.
	ExposeHostPorts []int
	// VolumeBucket or VolumeNFS ("SERVER:/EXPORT") is the shared file
	// system of docker volumes (dev default: a gcpsim bucket);
	// VolumeNFSDir is where this process has the NFS share mounted;
	// VolumeNetwork and VolumeSubnet carry functions' NFS traffic.
	VolumeBucket, VolumeNFS, VolumeNFSDir string
	VolumeNetwork, VolumeSubnet           string
	// Quota limits each namespace; Prices estimate costs (package engine).
	Quota  engine.Quota
	Prices engine.Prices
	// RateLimit is the requests per minute of one token or identity (0:
	// none).
	RateLimit int
	// GoogleAudience, if set, accepts Google ID tokens for this audience
	// (the service's URL) from members.
	GoogleAudience string
	// IDTokenOptions configure the Google ID token validator (tests give
	// it a local key set); nil: Google's keys.
	IDTokenOptions []option.ClientOption
	Version        string
	// IdleTimeout closes a keep-alive connection idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxBodyBytes bounds JSON request bodies (dockerapi.Config).
	MaxBodyBytes int64
	// RegistryAllow are the registries image references may name; empty
	// allows any.
	RegistryAllow []string
	Logger        *slog.Logger
	// DevSim finds or starts the gcpsim of --dev without GCPEndpoint
	// (package devstack; cmd/controlplane wires it in, so this package
	// never imports the simulation).
	DevSim func(ctx context.Context, cfg *Config, log *slog.Logger) (SimEndpoint, func() error, error)
}

// SimEndpoint is where a dev gcpsim serves.
type SimEndpoint struct {
	// GRPC is the host:port of the Google APIs; HTTP the base URL of
	// function URLs and /sim/v1/; Registry the host:port of its registry;
	// Storage the endpoint of its Cloud Storage JSON API.
	GRPC, HTTP, Registry, Storage string
}

// The hub stores a run's last output and its exit in one write.
var _ agenthub.OutputExitStorer = (*engine.AgentBackend)(nil)

// Run serves until ctx ends, then drains and returns.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	var closers closeStack
	defer closers.close(log)

	addrs := make([]listenAddr, 0, len(cfg.Listen))
	for _, l := range cfg.Listen {
		a, err := parseListen(l)
		if err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	// Listen first: the callback URL is the TCP listener's address.
	var lns []net.Listener
	var tcpAddr string
	for _, a := range addrs {
		if a.network == "tcp" && cfg.Token == "" {
			return fmt.Errorf("--token (SOCKERLESS_TOKEN) is required for the TCP listener %s", a.addr)
		}
	}
	for _, a := range addrs {
		ln, err := a.listen()
		if err != nil {
			return err
		}
		closers.add(func() error { return ln.Close() })
		lns = append(lns, ln)
		if a.network == "tcp" && tcpAddr == "" {
			tcpAddr = ln.Addr().String()
		}
	}
	var hubOnly net.Listener
	if cfg.CallbackURL == "" {
		if tcpAddr == "" {
			ln, err := hubListener(cfg.StateDir)
			if err != nil {
				return err
			}
			hubOnly = ln
			closers.add(func() error { return ln.Close() })
			tcpAddr = ln.Addr().String()
		}
		cfg.CallbackURL = "ws://" + tcpAddr
	}

	deps, err := cfg.dependencies(ctx, log, &closers)
	if err != nil {
		return err
	}
	nets := netplane.New(netplane.Config{Store: deps.store, Containers: deps.store, Logger: log.With("component", "netplane")})
	closers.add(nets.Close)
	fl := fleet.New(fleet.Config{
		Store:     deps.store,
		Images:    deps.images,
		Functions: deps.functions,
		Scope:     deps.scope,
		PoolSize:  cfg.PoolSize,
		Prewarm:   prewarmMatcher(cfg.PrewarmImages),
		Logger:    log.With("component", "fleet"),
	})
	eng := engine.New(engine.Config{
		Store:       deps.store,
		Networks:    nets,
		Images:      deps.images,
		Functions:   deps.functions,
		Fleet:       fl,
		Volumes:     deps.volumesOrNil(),
		CallbackURL: cfg.CallbackURL,
		Linger:      cfg.Linger,
		BootTimeout: cfg.BootTimeout,
		Logger:      log,
		BootLogs:    deps.bootLogs,
		Quota:       cfg.Quota,
		Prices:      cfg.Prices,
		Ledger:      deps.store,
	})
	hub := agenthub.New(eng.AgentBackend(), log)
	eng.SetAgents(hub)
	hasUnix := false
	for _, a := range addrs {
		hasUnix = hasUnix || a.network == "unix"
	}
	// Published ports: the clients of the unix socket are on this machine,
	// so the control plane binds their ports itself; forwarders bind
	// theirs through their links.
	var plane *publish.Plane
	links := clientlink.NewServer(clientlink.ServerConfig{
		Dial: func(ctx context.Context, ns, _, container string, port int) (net.Conn, error) {
			return plane.Dial(ctx, ns, container, port)
		},
		DialUDP: func(ctx context.Context, ns, _, container string, port int) (net.Conn, error) {
			return plane.DialUDP(ctx, ns, container, port)
		},
		Bindings: func(ctx context.Context, ns, client string) ([]portbind.Request, error) {
			return plane.Bindings(ctx, ns, client)
		},
		// A forwarder that comes up may expose other ports: the views of
		// its containers at host-gateway change.
		OnLink:    func(ns, _ string, _ []int) { nets.Touch(ns) },
		Namespace: requestNamespace,
		Logger:    log,
	})
	plane = publish.New(publish.Config{
		Store:          deps.store,
		Agents:         hub,
		Clients:        links,
		Local:          hasUnix,
		LocalHostPorts: cfg.ExposeHostPorts,
		Peers:          nets,
		OnPublished:    nets.Touch,
		Addr:           nets.DialAddr,
		Logger:         log,
	})
	closers.add(plane.Close)
	eng.SetPorts(plane)
	hub.SetMeshRouter(plane)
	nets.SetEvents(eng)
	nets.SetAgents(eng)
	nets.SetPublished(plane.PublishedHostPorts)
	nets.SetHostPorts(func(ns, client string) []int {
		if client == publish.LocalClient {
			return cfg.ExposeHostPorts
		}
		return links.HostPorts(ns, client)
	})
	imgOps := imageops.New(imageops.Config{Engine: eng, Images: seenImages{eng}, Registry: deps.registry, Logger: log.With("component", "images")})
	eng.SetFilesSizer(imgOps)
	var unixPaths []string
	for _, a := range addrs {
		if a.network == "unix" {
			unixPaths = append(unixPaths, a.addr)
		}
	}
	ncpu, mem := gcf.DefaultShape()
	api := dockerapi.New(eng, dockerapi.Config{Version: cfg.Version, Networks: nets, Volumes: deps.volumes, Images: imgOps, Logger: log, Client: requestClient, MaxBodyBytes: cfg.MaxBodyBytes, Namespace: requestNamespace,
		DockerSockets: requestSockets(unixPaths), Login: deps.login, NCPU: ncpu, MemTotal: mem})
	// Docker sockets bound into containers: served by the same API, as
	// the container's namespace.
	socks := dockersock.New(context.WithoutCancel(ctx), deps.store, api, log.With("part", "dockersock"))
	plane.SetDocker(socks.Connect)
	tunnel := wsconn.NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})

	verifier, err := cfg.idVerifier(ctx)
	if err != nil {
		return err
	}
	open := routes(handlers{
		hub: hub, mesh: hub.MeshHandler(), tunnel: tunnel, links: links,
		gc:         auth.RequireAdmin(gcHandler(fl, log)),
		pool:       poolHandler(fl, log),
		storeStats: auth.RequireAdmin(storeStatsHandler(deps.store)),
		admin:      auth.NewAdmin(deps.store, log),
		usage:      usageHandler(eng),
		api:        api,
	})
	fails := authn.NewFailures(log.With("component", "auth"))
	fails.TrustForwarded = !cfg.Dev
	fails.OnFailure = func(r *http.Request, source, reason string) { audit.Failure(deps.audit, r, source, reason) }
	audited := audit.Middleware(deps.audit, fails.Source, rateLimit(cfg.RateLimit, open))
	hub.SetAuthFailed(func(r *http.Request, reason string) { audit.Failure(deps.audit, r, fails.Source(r), reason) })
	authenticator := auth.New(auth.Config{AdminToken: cfg.Token, Store: deps.store, IDTokens: verifier, Logger: log})
	guarded := requireToken(authenticator, fails, audited)

	var servers []*http.Server
	var wg sync.WaitGroup
	// Requests live in reqCtx: shutdown ends long streams (logs -f, events,
	// waits) at once instead of waiting for them; clients and the forwarder
	// come back to the next process.
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	serve := func(ln net.Listener, h http.Handler) {
		srv := newHTTPServer(h, reqCtx, cfg.IdleTimeout)
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				log.Error("serve", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	for i, ln := range lns {
		if addrs[i].network == "unix" {
			serve(ln, localClient(audited))
		} else {
			serve(ln, guarded)
		}
	}
	if hubOnly != nil {
		hubMux := http.NewServeMux()
		hubMux.Handle(proto.ConnectPath, hub)
		hubMux.Handle(proto.MeshPath, hub.MeshHandler())
		serve(hubOnly, hubMux)
	}
	serve(tunnel, guarded)

	for _, ns := range namespaces(ctx, deps.store, log) {
		eng.Recover(ns)
	}
	if err := plane.RestoreLocal(ctx); err != nil {
		log.Error("restore published ports", "err", err)
	}
	log.Info("sockerless control plane ready", "listen", cfg.Listen, "callback", cfg.CallbackURL, "gcpsim", deps.simURL, "dev", cfg.Dev)
	<-ctx.Done()
	log.Info("shutting down")
	shutdownStart := time.Now()
	defer func() { log.Info("shut down", "took", time.Since(shutdownStart).String()) }()

	// Cloud Run kills the process 10 s after SIGTERM. Nothing is lost if a
	// step overruns (agents resend every frame the store has not
	// acknowledged), so the drain is bounded and the process goes anyway.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		defer cancel()
		_ = hub.Close()
		_ = links.Close()
		_ = socks.Close()
		for _, srv := range servers {
			srv.SetKeepAlivesEnabled(false)
		}
		endRequests()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
		for _, srv := range servers {
			_ = srv.Close() // hijacked streams
		}
		wg.Wait()
		_ = eng.Close()
		_ = fl.Close()
	}()
	select {
	case <-drained:
	case <-time.After(shutdownBound):
		log.Error("shutdown overran; exiting anyway (agents resend what the store did not acknowledge)", "bound", shutdownBound.String())
	}
	return nil
}

// shutdownBound is how long the drain after SIGTERM may take, under Cloud
// Run's 10 s.
const shutdownBound = 8 * time.Second

// validate refuses a configuration the control plane cannot run with,
// naming the setting; outside --dev see validateHosted. It fills the agent
// binary's default path.
func (cfg *Config) validate() error {
	if !cfg.Dev {
		if err := cfg.validateHosted(); err != nil {
			return err
		}
	}
	if cfg.StateDir == "" {
		return errors.New("--state-dir (SOCKERLESS_STATE_DIR) is required")
	}
	if len(cfg.Listen) == 0 {
		return errors.New("--listen (SOCKERLESS_LISTEN) is required (on Cloud Run it defaults to tcp://0.0.0.0:$PORT)")
	}
	if cfg.AgentBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find agent binary: %w", err)
		}
		cfg.AgentBinary = filepath.Join(filepath.Dir(exe), "agent")
	}
	if _, err := os.Stat(cfg.AgentBinary); err != nil {
		return fmt.Errorf("agent binary (--agent-binary, SOCKERLESS_AGENT_BINARY): %w", err)
	}
	return nil
}

// closeStack closes what was opened, last first.
type closeStack struct{ fns []func() error }

func (c *closeStack) add(f func() error) { c.fns = append(c.fns, f) }

func (c *closeStack) close(log *slog.Logger) {
	for i := len(c.fns) - 1; i >= 0; i-- {
		if err := c.fns[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Debug("close", "err", err)
		}
	}
}

// hubListener listens for agents when no TCP listener is configured, on
// the port this state directory used before if it is free: agents of
// running containers dial back to the address they were given, also after
// a control plane restart.
func hubListener(stateDir string) (net.Listener, error) {
	rec := filepath.Join(stateDir, "hub.addr")
	if prev, err := os.ReadFile(rec); err == nil {
		if ln, err := net.Listen("tcp", strings.TrimSpace(string(prev))); err == nil {
			return ln, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hub listener: %w", err)
	}
	if err := os.WriteFile(rec, []byte(ln.Addr().String()), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("hub listener: %w", err)
	}
	return ln, nil
}

// localKey marks requests that came through a unix socket.
type localKey struct{}

// localIdentity is who a unix socket's client is: the socket's file mode
// already limits it to this machine's owner, an admin of the default
// namespace.
var localIdentity = auth.Identity{Member: "local", Namespace: auth.DefaultNamespace, Role: auth.RoleAdmin}

// localClient marks the requests of a unix socket's clients: they run on
// this machine, whose published ports the control plane binds itself.
func localClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), localKey{}, true)
		if _, ok := auth.FromContext(ctx); !ok {
			ctx = auth.WithIdentity(ctx, localIdentity)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestNamespace is the namespace of the identity that sent r.
func requestNamespace(r *http.Request) string { return auth.Namespace(r.Context()) }

// namespaces lists every namespace that may hold containers: the default
// one and those that do (a revoked token's containers are recovered too).
func namespaces(ctx context.Context, s interface {
	ContainerNamespaces(ctx context.Context) ([]string, error)
}, log *slog.Logger) []string {
	out := []string{auth.DefaultNamespace}
	nss, err := s.ContainerNamespaces(ctx)
	if err != nil {
		log.Error("recover: list namespaces", "err", err)
	}
	for _, ns := range nss {
		if ns != auth.DefaultNamespace {
			out = append(out, ns)
		}
	}
	return out
}

// requestClient names the client side of a request (engine.Container.Client):
// the control plane itself for its unix socket, the forwarder's ID it
// sends on every request, or none.
func requestClient(r *http.Request) string {
	if c, ok := dockersock.FromContext(r.Context()); ok {
		return c.Client // siblings belong to the outer container's client side
	}
	if r.Context().Value(localKey{}) != nil {
		return publish.LocalClient
	}
	if c := r.Header.Get(clientlink.HeaderClient); c != publish.LocalClient {
		return c
	}
	return "" // only the unix socket's clients are this machine's
}

// HeaderSocket carries the path of the forwarder's own unix socket.
const HeaderSocket = "X-Sockerless-Socket"

// requestSockets names the Docker sockets of a request's client
// (engine.CreateRequest.DockerSockets): the socket bound into the
// container a request came from, this control plane's unix sockets for
// their clients, or the forwarder's socket it sends.
func requestSockets(unixPaths []string) func(*http.Request) []string {
	return func(r *http.Request) []string {
		if c, ok := dockersock.FromContext(r.Context()); ok {
			return c.Sockets
		}
		if r.Context().Value(localKey{}) != nil {
			return unixPaths
		}
		if p := r.Header.Get(HeaderSocket); p != "" {
			return []string{p}
		}
		return nil
	}
}
