// Command controlplane is the Sockerless control plane: the Docker Engine
// API, the agent hub and the container engine. With --dev it runs the whole
// local stack (embedded store, in-process gcpsim and registry).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sockerless/sockerless/services/internal/controlplane"
	"github.com/sockerless/sockerless/services/internal/devstack"
	"github.com/sockerless/sockerless/services/internal/gcpsim/storage"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "tokens" || os.Args[1] == "members") {
		os.Exit(runAdmin(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	cfg, log, err := parse(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(2)
	}
	cfg.DevSim = devSim
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := controlplane.Run(ctx, cfg); err != nil {
		log.Error("control plane failed", "err", err)
		os.Exit(1)
	}
}

// devSim starts or finds the gcpsim of --dev (package devstack), in
// cfg.StateDir/gcpsim.
func devSim(ctx context.Context, cfg *controlplane.Config, log *slog.Logger) (controlplane.SimEndpoint, func() error, error) {
	ep, closeSim, err := devstack.Start(ctx, devstack.Options{
		StateDir:       filepath.Join(cfg.StateDir, "gcpsim"),
		Binary:         cfg.GCPSimBinary,
		CallbackURL:    cfg.CallbackURL,
		OperationDelay: cfg.OperationDelay,
		Profile:        cfg.SimProfile,
		TimeScale:      cfg.SimTimeScale,
	}, log)
	if err != nil {
		return controlplane.SimEndpoint{}, nil, err
	}
	return controlplane.SimEndpoint{GRPC: ep.GRPC, HTTP: ep.HTTP, Registry: ep.Registry, Storage: ep.HTTP + storage.Prefix}, closeSim, nil
}
