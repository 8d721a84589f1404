// Command gcpsim runs the local Google (services/internal/gcpsim) as its own
// process: Cloud Functions v2, Cloud Run v2, Operations and Cloud Logging
// over gRPC; function URLs, source uploads, an OCI registry and /sim/v1/
// over HTTP. It logs one JSON line containing "ready" with its addresses
// once it serves, and drains (killing every instance) on SIGTERM or SIGINT.
//
// Every flag has an env twin: --state-dir is SOCKERLESS_STATE_DIR, etc.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/agent/jsonlog"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gcpsim:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, logging JSON lines to logw.
func run(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("gcpsim", flag.ContinueOnError)
	var (
		stateDir = fs.String("state-dir", filepath.Join(os.TempDir(), "sockerless-gcpsim"), "directory for registry blobs, unpacked images and instance bundles")
		grpcAddr = fs.String("grpc-listen", "127.0.0.1:0", "address of the gRPC APIs (Functions, Run, Operations, Logging)")
		httpAddr = fs.String("http-listen", "127.0.0.1:0", "address of function URLs, uploads, the registry and /sim/v1/")
		opDelay  = fs.Duration("operation-delay", 2*time.Second, "how long create/update/delete operations take (fast profile)")
		profile  = fs.String("profile", gcpsim.ProfileFast, "delay profile: fast (operations take --operation-delay, no cold start, no quotas) or google (Google's build, deploy and cold start times and write quotas; see gcpsim's doc)")
		scale    = fs.Float64("time-scale", 1, "multiply the profile's delays and quota window by this (0.02: Google's clock fifty times as fast)")
		idle     = fs.Duration("idle-timeout", 15*time.Minute, "stop an instance idle this long")
		queue    = fs.Duration("queue-timeout", 10*time.Second, "how long a request waits for a free instance before a 429")
		grace    = fs.Duration("stop-grace", 10*time.Second, "time between SIGTERM and SIGKILL when stopping an instance")
		runcPath = fs.String("runc", "/usr/sbin/runc", "the runc binary")
		copyRoot = fs.Bool("copy-rootfs", false, "copy each instance's rootfs instead of mounting an overlay")
		insecure = fs.Bool("insecure-registries", false, "pull instance images over plain http from any registry")
		logLevel = fs.String("log-level", "info", "debug, info, warn or error")
		epFile   = fs.String("endpoint-file", "", "once serving, write its addresses (and pid) here as JSON, for a control plane that starts later; removed on exit")
		pasta    = fs.String("pasta", "pasta", "the pasta binary (Debian's passt) that gives function instances internet egress")
		noNet    = fs.Bool("no-internet", false, "give function instances no internet egress, only the host ports and the host's loopback resolvers")
		hostPort []int
	)
	fs.Func("host-port", "a TCP port of the host's loopback that function instances reach at the same address, e.g. the control plane's callback port (repeatable; comma-separated list)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("bad port %q", f)
			}
			hostPort = append(hostPort, p)
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := jsonlog.New(logw, level)
	prof, err := gcpsim.ProfileNamed(*profile, *opDelay)
	if err != nil {
		return err
	}
	if *scale <= 0 {
		return fmt.Errorf("--time-scale must be positive, got %v", *scale)
	}
	srv, err := gcpsim.Start(ctx, gcpsim.Config{
		Profile:  prof.Scaled(*scale),
		StateDir: *stateDir, OperationDelay: *opDelay, IdleTimeout: *idle, QueueTimeout: *queue,
		StopGrace: *grace, RuncPath: *runcPath, CopyRootfs: *copyRoot, InsecureRegistries: *insecure,
		HostPorts: hostPort, Pasta: *pasta, NoInternet: *noNet,
		GRPCListen: *grpcAddr, HTTPListen: *httpAddr, Logger: logger,
	})
	if err != nil {
		return err
	}
	// The endpoint file first: "ready" promises everything is in place.
	if *epFile != "" {
		if err := gcpsim.WriteEndpoint(*epFile, srv.Endpoint()); err != nil {
			_ = srv.Close()
			return err
		}
		defer gcpsim.RemoveEndpoint(*epFile, os.Getpid())
	}
	logger.Info("gcpsim ready", "grpc", srv.GRPCAddr(), "http", srv.HTTPURL(), "registry", srv.RegistryHost(),
		"profile", prof.Name, "timeScale", *scale,
		"stateDir", *stateDir, "overlay", srv.Overlay(), "hostPorts", srv.HostPorts())
	<-ctx.Done()
	logger.Info("gcpsim draining")
	return srv.Close()
}

// applyEnv sets every flag not given on the command line from its env twin
// SOCKERLESS_<FLAG> (upper case, dashes as underscores).
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		key := "SOCKERLESS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", key, e)
			}
		}
	})
	return err
}
