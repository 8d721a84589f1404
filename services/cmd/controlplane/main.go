// Command controlplane is the Sockerless control plane: the Docker Engine
// API, the agent hub and the container engine. With --dev it runs the whole
// local stack (embedded store, in-process gcpsim and registry).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sockerless/sockerless/services/internal/controlplane"
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := controlplane.Run(ctx, cfg); err != nil {
		log.Error("control plane failed", "err", err)
		os.Exit(1)
	}
}
