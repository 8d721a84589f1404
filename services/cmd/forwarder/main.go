// Command forwarder turns a local unix socket into authenticated HTTPS to a
// Sockerless control plane, so that the docker CLI and SDKs work unchanged:
//
//	forwarder --listen unix:///tmp/sockerless.sock --upstream https://CONTROL-PLANE --token T
//	DOCKER_HOST=unix:///tmp/sockerless.sock docker run --rm busybox echo hello
//
// Every flag has an environment twin (SOCKERLESS_LISTEN, SOCKERLESS_UPSTREAM,
// SOCKERLESS_TOKEN, SOCKERLESS_EXPOSE_HOST_PORT); a flag wins over its
// variable. Streams docker hijacks (attach, exec) travel as WebSocket
// tunnels; see package forward. The published ports of the containers
// created through it are bound on this machine and carried over its link
// to the control plane (package clientlink), which it keeps open.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/agent/jsonlog"

	"github.com/sockerless/sockerless/services/internal/bindguard"
	"github.com/sockerless/sockerless/services/internal/clientlink"
	"github.com/sockerless/sockerless/services/internal/forward"
	"github.com/sockerless/sockerless/services/internal/portbind"
	"github.com/sockerless/sockerless/services/internal/settings"
	"google.golang.org/api/idtoken"
)

const (
	// drainTimeout is how long in-flight requests and streams may finish
	// after SIGTERM before they are cut.
	drainTimeout = 10 * time.Second
	socketMode   = 0o660
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// config is the forwarder's settings after flags and environment.
type config struct {
	listen   string
	upstream *url.URL
	token    string
	// google sends Google ID tokens (ADC) with audience googleAudience
	// instead of token.
	google         bool
	googleAudience string
	// hostPorts are the ports of this machine containers may reach.
	hostPorts []int
}

// errUsage marks a configuration error: exit status 2.
var errUsage = errors.New("usage")

// parseConfig reads flags, falling back to their SOCKERLESS_* twins.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fset := flag.NewFlagSet("forwarder", flag.ContinueOnError)
	fset.SetOutput(stderr)
	// Defaults stay out of the flag definitions so that usage text never
	// shows a token taken from the environment.
	listen := fset.String("listen", "",
		"where docker connects: unix:///PATH, a bare PATH, or tcp://HOST:PORT (env SOCKERLESS_LISTEN; default "+defaultListen(getenv)+")")
	upstream := fset.String("upstream", "",
		"the control plane's URL, http(s)://HOST[:PORT] (env SOCKERLESS_UPSTREAM)")
	token := fset.String("token", "",
		"bearer token sent to the control plane (env SOCKERLESS_TOKEN)")
	google := fset.Bool("google", false,
		"send a Google ID token of Application Default Credentials (a service account, an impersonated one, workload identity) instead of --token; audience: --google-audience (env SOCKERLESS_GOOGLE=true)")
	googleAudience := fset.String("google-audience", "",
		"audience of the ID tokens (env SOCKERLESS_GOOGLE_AUDIENCE; default: the --upstream URL, as Cloud Run expects)")
	var exposed []string
	fset.Func(settings.ExposeHostPort,
		"a TCP port of this machine that containers may reach as host.docker.internal (--add-host NAME:host-gateway); repeatable (env "+settings.EnvName(settings.ExposeHostPort)+", comma-separated)",
		func(v string) error { exposed = append(exposed, v); return nil })
	if err := fset.Parse(args); err != nil {
		return config{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fset.NArg() > 0 {
		return config{}, fmt.Errorf("%w: unexpected arguments %q", errUsage, fset.Args())
	}
	set := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]*string{"listen": listen, "upstream": upstream, "token": token, "google-audience": googleAudience} {
		if !set[name] {
			*v = getenv("SOCKERLESS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
		}
	}
	if !set["google"] {
		switch v := getenv("SOCKERLESS_GOOGLE"); v {
		case "", "0", "false":
		case "1", "true":
			*google = true
		default:
			return config{}, fmt.Errorf("%w: SOCKERLESS_GOOGLE is %q: want true or false", errUsage, v)
		}
	}
	if !set[settings.ExposeHostPort] {
		for _, p := range strings.Split(getenv(settings.EnvName(settings.ExposeHostPort)), ",") {
			if p = strings.TrimSpace(p); p != "" {
				exposed = append(exposed, p)
			}
		}
	}
	hostPorts, err := portbind.ParsePorts(exposed)
	if err != nil {
		return config{}, fmt.Errorf("%w: --%s: %w", errUsage, settings.ExposeHostPort, err)
	}
	if *listen == "" {
		*listen = defaultListen(getenv)
	}
	if *upstream == "" {
		return config{}, fmt.Errorf("%w: no control plane URL: set --upstream or SOCKERLESS_UPSTREAM", errUsage)
	}
	u, err := url.Parse(*upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config{}, fmt.Errorf("%w: --upstream/SOCKERLESS_UPSTREAM must be an http(s) URL with a host, got %q", errUsage, redactURL(*upstream))
	}
	if *google && *token != "" {
		return config{}, fmt.Errorf("%w: --google and --token both say how to authenticate: give one", errUsage)
	}
	if *google && *googleAudience == "" {
		*googleAudience = strings.TrimSuffix(u.String(), "/")
	}
	return config{listen: *listen, upstream: u, token: *token, google: *google, googleAudience: *googleAudience, hostPorts: hostPorts}, nil
}

// defaultListen is a per-user socket: $XDG_RUNTIME_DIR/sockerless.sock, else
// in the temporary directory.
func defaultListen(getenv func(string) string) string {
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	return "unix://" + filepath.Join(dir, "sockerless.sock")
}

// redactURL hides credentials in a URL that may not parse.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// parseListen splits a listen address into network and address.
func parseListen(s string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(s, "unix://"):
		network, addr = "unix", strings.TrimPrefix(s, "unix://")
	case strings.HasPrefix(s, "tcp://"):
		network, addr = "tcp", strings.TrimPrefix(s, "tcp://")
	case strings.Contains(s, "://"):
		return "", "", fmt.Errorf("%w: --listen %q: only unix:// and tcp:// are supported", errUsage, s)
	default:
		network, addr = "unix", s
	}
	if addr == "" {
		return "", "", fmt.Errorf("%w: --listen %q: empty address", errUsage, s)
	}
	return network, addr, nil
}

// listen opens the listener. A unix socket left behind by a dead process is
// removed first; one a live process answers on is not touched.
func listen(network, addr string) (net.Listener, error) {
	if network == "tcp" {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", addr)
		}
		if c, err := net.DialTimeout("unix", addr, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving this socket", addr)
		}
		if err := os.Remove(addr); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", addr, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(addr), 0o755); err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	l, err := net.Listen("unix", addr)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(addr, socketMode); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod %s: %w", addr, err)
	}
	return l, nil
}

// run is the forwarder: it serves until ctx ends, then drains and returns
// the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "forwarder: %v\n", err)
		return 2
	}
	log := jsonlog.New(stderr, slog.LevelInfo)
	network, addr, err := parseListen(cfg.listen)
	if err != nil {
		fmt.Fprintf(stderr, "forwarder: %v\n", err)
		return 2
	}
	host, _ := os.Hostname()
	client := clientlink.ClientID(host, network+"://"+addr)
	var tokens func() (string, error)
	if cfg.google {
		if tokens, err = googleTokens(ctx, cfg.googleAudience); err != nil {
			fmt.Fprintf(stderr, "forwarder: --google: %v\n", err)
			return 2
		}
	}
	// The host paths containers created through this forwarder bind: the
	// only ones the link serves the control plane.
	guard, err := bindguard.Open(bindRecordFile(client))
	if err != nil {
		fmt.Fprintf(stderr, "forwarder: %v\n", err)
		return 1
	}
	fcfg := forward.Config{Upstream: cfg.upstream, Token: cfg.token, Tokens: tokens, Client: client, Binds: guard, Logger: log}
	if network == "unix" {
		fcfg.Socket = addr
	}
	fwd, err := forward.New(fcfg)
	if err != nil {
		fmt.Fprintf(stderr, "forwarder: %v\n", err)
		return 2
	}
	l, err := listen(network, addr)
	if err != nil {
		log.Error("cannot listen", "err", err)
		return 1
	}
	srv := &http.Server{
		Handler:           fwd,
		ReadHeaderTimeout: 30 * time.Second,
		// An idle keep-alive client holds no descriptor for good.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	// The link carries published ports; its listeners close when it stops.
	link := clientlink.NewClient(clientlink.ClientConfig{Upstream: cfg.upstream, Token: cfg.token, Tokens: tokens, ClientID: client, HostPorts: cfg.hostPorts, AllowBind: guard.Allow, Logger: log})
	linkCtx, stopLink := context.WithCancel(context.Background())
	linkDone := make(chan struct{})
	go func() {
		defer close(linkDone)
		link.Run(linkCtx)
	}()
	log.Info("ready", "network", network, "listen", addr, "upstream", cfg.upstream.Redacted(),
		"token_set", cfg.token != "", "google", cfg.google, "client", client, "exposeHostPorts", cfg.hostPorts)

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", drainTimeout.String())
	case err := <-served:
		log.Error("serve failed", "err", err)
		code = 1
	}
	drain(srv, fwd, log)
	stopLink()
	<-linkDone
	if network == "unix" {
		if err := os.Remove(addr); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot remove socket", "path", addr, "err", err)
		}
	}
	log.Info("stopped")
	return code
}

// bindRecordFile is where the forwarder of client keeps its bind record:
// the user's state directory ($XDG_STATE_HOME, else ~/.local/state), one
// file per client ID (machine and listen address), so that a restarted
// forwarder serves the binds of containers created before.
func bindRecordFile(client string) string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "" // in memory only
		}
		dir = filepath.Join(home, ".local", "state")
	}
	sum := sha256.Sum256([]byte(client))
	return filepath.Join(dir, "sockerless", "forwarder-"+hex.EncodeToString(sum[:8])+"-binds.json")
}

// drain stops accepting, lets requests and streams finish for drainTimeout,
// then cuts what is left.
func drain(srv *http.Server, fwd *forward.Forwarder, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("requests still open after grace period; closing them", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := fwd.Shutdown(ctx); err != nil {
			log.Warn("streams still open after grace period; closed them", "err", err)
		}
	}()
	wg.Wait()
	_ = srv.Close()
}

// googleTokens returns Google ID tokens for audience from Application
// Default Credentials, cached and refreshed before they expire
// (google.golang.org/api/idtoken). User credentials from gcloud auth
// application-default login cannot mint ID tokens: impersonate a service
// account (--impersonate-service-account) or run as one.
func googleTokens(ctx context.Context, audience string) (func() (string, error), error) {
	ts, err := idtoken.NewTokenSource(context.WithoutCancel(ctx), audience)
	if err != nil {
		return nil, err
	}
	return func() (string, error) {
		t, err := ts.Token()
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}, nil
}
