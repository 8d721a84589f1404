// Command agent is the entrypoint of every function instance: it is added as
// a layer to the user's image (at /.sockerless/agent) and runs as PID 1. It
// listens on $PORT (default 8080) for the invocation that carries a
// container, dials the control plane's hub back, runs the container's
// process and streams its output, and exits when the container is removed
// or its linger time is over, which ends the instance.
package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/sockerless/sockerless/agent/internal/instance"
	"github.com/sockerless/sockerless/agent/internal/mounts"
	"github.com/sockerless/sockerless/agent/internal/netview"
	"github.com/sockerless/sockerless/agent/internal/server"
	"github.com/sockerless/sockerless/agent/jsonlog"
)

func main() {
	os.Exit(run())
}

func run() int {
	if mounts.IsHelper() {
		return mounts.RunHelper()
	}
	level := slog.LevelInfo
	if os.Getenv("SOCKERLESS_AGENT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := jsonlog.New(os.Stderr, level)
	mounter, err := mounts.Boot() // re-executes a privileged agent
	if err != nil {
		log.Error("boot", "err", err)
		return 1
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		log.Error("listen", "port", port, "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	srv := server.New(server.Config{
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Signals: sigs,
		Mounter: mounter,
		Logger:  log,
		// Docker's network inside the instance: /etc/hosts, the embedded
		// DNS server, listeners for peers (the control plane's views).
		NewNetwork: func(d instance.NetworkDeps) instance.Network {
			return netview.New(netview.Config{Dial: d.Dial, Listening: d.Listening, Logger: d.Logger})
		},
	})
	if err := srv.Serve(context.Background(), ln); err != nil {
		log.Error("agent ended", "err", err)
		return 1
	}
	log.Info("agent done")
	return 0
}
