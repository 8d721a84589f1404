package gcpsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"time"

	"cloud.google.com/go/functions/apiv2/functionspb"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sockerless/sockerless/services/internal/gcpsim/functions"
	"github.com/sockerless/sockerless/services/internal/gcpsim/instances"
	"github.com/sockerless/sockerless/services/internal/gcpsim/instnet"
	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
	"github.com/sockerless/sockerless/services/internal/gcpsim/lro"
	"github.com/sockerless/sockerless/services/internal/gcpsim/quota"
	"github.com/sockerless/sockerless/services/internal/gcpsim/registry"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
	"github.com/sockerless/sockerless/services/internal/gcpsim/storage"
)

// Config configures gcpsim. Zero values take the documented defaults.
type Config struct {
	// StateDir holds registry blobs, unpacked images, instance bundles and
	// runc state. Required.
	StateDir string
	// Profile is Google's clock and quotas (ProfileNamed, Scaled); its
	// zero value is FastProfile(OperationDelay).
	Profile Profile
	// OperationDelay is how long create/update/delete operations take
	// (Google's build and deploy time). Zero completes them at once.
	OperationDelay time.Duration
	// IdleTimeout stops an idle instance; default 15 minutes.
	IdleTimeout time.Duration
	// QueueTimeout is how long a request waits for an instance of a
	// revision at its max instances before a 429; default 10 s.
	QueueTimeout time.Duration
	// StartupTimeout bounds an instance's cold start; default 4 minutes.
	StartupTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL; default 10 s.
	StopGrace time.Duration
	// RuncPath is the runc binary; default /usr/sbin/runc.
	RuncPath string
	// CopyRootfs makes instance root filesystems full copies, not overlays.
	CopyRootfs bool
	// InsecureRegistries pulls instance images over plain http from any
	// registry (loopback and private networks always are).
	InsecureRegistries bool
	// HostPorts are TCP ports of the host's loopback that function
	// instances reach at the same address (127.0.0.1:P, [::1]:P), e.g. the
	// control plane's callback port; AllowHostPort adds more.
	HostPorts []int
	// Pasta is the pasta binary (Debian's passt) that gives instances
	// internet egress; default "pasta" on PATH. Without it instances reach
	// only HostPorts and the host's loopback resolvers.
	Pasta string
	// NoInternet gives instances no internet egress even where pasta is.
	NoInternet bool
	// ResolvConf is the resolver configuration copied into instances;
	// default /etc/resolv.conf.
	ResolvConf string
	// GRPCListen and HTTPListen are the addresses Start listens on;
	// default 127.0.0.1:0 each.
	GRPCListen, HTTPListen string
	// Logger receives gcpsim's logs (never instance output); default: none.
	Logger *slog.Logger
}

// Server is a running gcpsim.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	grpcLn  net.Listener
	httpLn  net.Listener
	httpURL string

	profile   Profile
	ops       *lro.Table
	run       *run.Server
	functions *functions.Server
	logs      *logging.Store
	instances *instances.Manager
	grpc      *grpc.Server
	http      *http.Server

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// New builds gcpsim to serve gRPC on grpcLn and HTTP on httpLn; Serve runs it.
func New(cfg Config, grpcLn, httpLn net.Listener) (*Server, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("gcpsim: StateDir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, logger: cfg.Logger, grpcLn: grpcLn, httpLn: httpLn,
		httpURL: "http://" + httpLn.Addr().String(),
		ops:     lro.NewTable(),
		logs:    logging.NewStore(0),
		done:    make(chan struct{}),
	}
	prof := cfg.Profile
	if prof.Name == "" {
		prof = FastProfile(cfg.OperationDelay)
	}
	s.profile = prof
	writes := func(service string) *quota.Limiter {
		return &quota.Limiter{Service: service, Limit: prof.WritesPerMinute, Window: prof.Minute}
	}
	mgr, err := instances.New(instances.Config{
		ColdStart: prof.ColdStart, PullBytesPerSecond: prof.PullBytesPerSecond,
		StateDir: filepath.Join(cfg.StateDir, "run"), RuncPath: cfg.RuncPath,
		IdleTimeout: cfg.IdleTimeout, QueueTimeout: cfg.QueueTimeout,
		StartupTimeout: cfg.StartupTimeout, StopGrace: cfg.StopGrace,
		Copy: cfg.CopyRootfs, Insecure: cfg.InsecureRegistries,
		Network:    instnet.Config{HostPorts: cfg.HostPorts, Pasta: cfg.pasta(), ResolvConf: cfg.ResolvConf},
		StorageDir: s.storageDir(),
		Logs:       s.logs, Logger: cfg.Logger.With("component", "instances"),
	})
	if err != nil {
		return nil, fmt.Errorf("gcpsim: %w", err)
	}
	s.instances = mgr
	s.run = run.NewServer(run.Config{
		Operations: s.ops, Delay: prof.Revision, URL: s.functionURL,
		Writes:  writes("run.googleapis.com"),
		Retired: mgr.Retire, Serving: mgr.Warm, Logger: cfg.Logger.With("component", "run"),
		Deploying: func(rev *run.Revision) {
			if !functions.IsStub(rev.Image) { // a stub's is served by gcpsim itself
				mgr.Prefetch(rev.Image)
			}
		},
	})
	s.functions = functions.NewServer(functions.Config{
		Operations: s.ops, Services: s.run, Delay: prof.CreateFunction, DeleteDelay: prof.DeleteFunction,
		Writes: writes("cloudfunctions.googleapis.com"), MaxFunctions: prof.FunctionsPerRegion,
		UploadURL:   func(id string) string { return s.httpURL + "/upload/" + id },
		FunctionURL: s.functionURL,
		Logger:      cfg.Logger.With("component", "functions"),
	})
	reg, err := registry.New(filepath.Join(cfg.StateDir, "registry"), cfg.Logger.With("component", "registry"))
	if err != nil {
		return nil, fmt.Errorf("gcpsim: %w", err)
	}

	s.grpc = grpc.NewServer()
	functionspb.RegisterFunctionServiceServer(s.grpc, s.functions)
	runpb.RegisterServicesServer(s.grpc, s.run)
	longrunningpb.RegisterOperationsServer(s.grpc, lro.NewServer(s.ops))
	loggingpb.RegisterLoggingServiceV2Server(s.grpc, logging.NewServer(s.logs))
	s.http = &http.Server{Handler: s.routes(reg), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// pasta resolves the pasta binary of instances' internet egress: "" for
// none, saying why in the log.
func (cfg Config) pasta() string {
	if cfg.NoInternet {
		cfg.Logger.Info("function instances have no internet egress (turned off)")
		return ""
	}
	bin := cfg.Pasta
	if bin == "" {
		bin = "pasta"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		cfg.Logger.Warn("function instances have no internet egress: no pasta (apt-get install passt)", "err", err)
		return ""
	}
	return path
}

// Profile is the delay profile s runs with.
func (s *Server) Profile() Profile { return s.profile }

// AllowHostPort makes a TCP port of the host's loopback reachable from
// the function instances that start from now on.
func (s *Server) AllowHostPort(port int) { s.instances.AllowHostPort(port) }

// HostPorts lists the host ports new instances reach.
func (s *Server) HostPorts() []int { return s.instances.HostPorts() }

// functionURL is the invocation URL of a function or service.
func (s *Server) functionURL(project, location, id string) string {
	return s.httpURL + "/functions/" + project + "/" + location + "/" + id
}

// Start listens on cfg.GRPCListen and cfg.HTTPListen and serves in the
// background until ctx ends or Close is called.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var lc net.ListenConfig
		return lc.Listen(ctx, "tcp", addr)
	}
	g, err := listen(cfg.GRPCListen)
	if err != nil {
		return nil, fmt.Errorf("gcpsim: grpc listen: %w", err)
	}
	h, err := listen(cfg.HTTPListen)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("gcpsim: http listen: %w", err)
	}
	s, err := New(cfg, g, h)
	if err != nil {
		g.Close()
		h.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	go func() { _ = s.Serve(ctx) }()
	return s, nil
}

// Close stops a server started with Start and waits until it has drained.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	<-s.done
	return s.err
}

// Serve serves until ctx ends, then drains: pending operations stop,
// every instance is killed and deleted, both listeners close.
func (s *Server) Serve(ctx context.Context) error {
	defer close(s.done)
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.grpcLn) }()
	go func() { errc <- s.http.Serve(s.httpLn) }()
	s.logger.Info("gcpsim serving", "grpc", s.GRPCAddr(), "http", s.httpURL)

	var serveErr error
	pending := 2
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		pending--
	}
	s.ops.Close()
	stopCtx, cancel := context.WithTimeout(context.Background(), s.stopGrace()+30*time.Second)
	defer cancel()
	if err := s.instances.Close(stopCtx); err != nil {
		s.logger.Warn("gcpsim: instances did not all stop", "err", err)
	}
	httpCtx, cancelHTTP := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelHTTP()
	if err := s.http.Shutdown(httpCtx); err != nil {
		s.http.Close()
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.grpc.Stop()
		<-stopped
	}
	for ; pending > 0; pending-- {
		<-errc
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, grpc.ErrServerStopped) {
		s.err = fmt.Errorf("gcpsim: serve: %w", serveErr)
	}
	s.logger.Info("gcpsim stopped")
	return s.err
}

func (s *Server) stopGrace() time.Duration {
	if s.cfg.StopGrace > 0 {
		return s.cfg.StopGrace
	}
	return 10 * time.Second
}

// storageDir holds Cloud Storage buckets and NFS exports: the data of
// Cloud Run volumes.
func (s *Server) storageDir() string { return filepath.Join(s.cfg.StateDir, "storage") }

// StorageURL is the Cloud Storage JSON API's endpoint, for
// option.WithEndpoint.
func (s *Server) StorageURL() string { return s.httpURL + storage.Prefix }

// GRPCAddr is the host:port of the gRPC APIs, for option.WithEndpoint.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// HTTPURL is the base URL of the HTTP listener ("http://127.0.0.1:PORT").
func (s *Server) HTTPURL() string { return s.httpURL }

// RegistryHost is the registry's host:port, as in image references
// ("HOST:PORT/sockerless/wrapped:TAG").
func (s *Server) RegistryHost() string { return s.httpLn.Addr().String() }

// Logs is the in-memory Cloud Logging store of instance output.
func (s *Server) Logs() *logging.Store { return s.logs }

// Instances lists the live function instances.
func (s *Server) Instances() []instances.Info { return s.instances.Instances() }

// Overlay reports whether instance root filesystems are overlay mounts.
func (s *Server) Overlay() bool { return s.instances.Overlay() }

// ClientOptions are the options that point a Google API Go client at
// gcpsim's gRPC listener: endpoint, plaintext, no credentials.
func (s *Server) ClientOptions() []option.ClientOption {
	return ClientOptions(s.GRPCAddr())
}

// ClientOptions are the options that point a Google API Go client at a
// gcpsim gRPC address.
func ClientOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}
