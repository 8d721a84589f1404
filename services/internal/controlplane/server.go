package controlplane

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/clientlink"
)

// Timeouts of every HTTP server of the control plane. A connection that
// sends no complete request head within readHeaderTimeout, or stays idle
// between requests for the idle timeout, is closed: otherwise each such
// connection holds a file descriptor for good. Long requests (logs -f,
// attach, agent sessions) are not bounded: they have sent their head.
const (
	readHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is Config.IdleTimeout's default.
	DefaultIdleTimeout = 2 * time.Minute
)

// newHTTPServer is the server of one listener: h under the timeouts, every
// request in base's context.
func newHTTPServer(h http.Handler, base context.Context, idle time.Duration) *http.Server {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idle,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
}

// handlers are what the control plane serves on its listeners.
type handlers struct {
	hub, mesh, tunnel, links, gc, pool, storeStats, api http.Handler
	// admin serves the token and member endpoints (package auth).
	admin http.Handler
	// usage serves UsagePath; nil: not served.
	usage http.Handler
}

// routes is the table of the control plane's own paths; everything else
// is the Docker API.
func routes(h handlers) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(proto.ConnectPath, h.hub)
	mux.Handle(proto.MeshPath, h.mesh)
	mux.Handle(TunnelPath, h.tunnel)
	mux.Handle(clientlink.Path, h.links)
	mux.Handle(GCPath, h.gc)
	if h.pool != nil {
		mux.Handle(PoolPath, h.pool)
	}
	mux.Handle(StoreStatsPath, h.storeStats)
	if h.admin != nil {
		for _, p := range []string{auth.TokensPath, auth.MembersPath} {
			mux.Handle(p, h.admin)
			mux.Handle(p+"/", h.admin)
		}
	}
	if h.usage != nil {
		mux.Handle(UsagePath, h.usage)
	}
	mux.Handle("/", h.api)
	return mux
}
