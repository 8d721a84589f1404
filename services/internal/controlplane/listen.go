package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/authn"
)

// listenAddr is a parsed --listen value.
type listenAddr struct {
	network string // "unix" or "tcp"
	addr    string
	// reusePort lets several control plane processes listen on one TCP
	// port (SO_REUSEPORT; the kernel spreads new connections): what one
	// Cloud Run URL does during a redeploy, for testing it on one machine.
	reusePort bool
}

// parseListen reads unix:///path, tcp://host:port[?reuseport=true], or a
// bare path.
func parseListen(s string) (listenAddr, error) {
	if strings.HasPrefix(s, "/") {
		return listenAddr{network: "unix", addr: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return listenAddr{}, fmt.Errorf("listen %q: %w", s, err)
	}
	switch u.Scheme {
	case "unix":
		return listenAddr{network: "unix", addr: u.Path}, nil
	case "tcp", "http":
		a := listenAddr{network: "tcp", addr: u.Host}
		for k, v := range u.Query() {
			if k != "reuseport" || len(v) != 1 || (v[0] != "true" && v[0] != "false") {
				return listenAddr{}, fmt.Errorf("listen %q: the only option is reuseport=true|false", s)
			}
			a.reusePort = v[0] == "true"
		}
		return a, nil
	}
	return listenAddr{}, fmt.Errorf("listen %q: scheme must be unix:// or tcp://", s)
}

// listen opens the listener; a unix socket replaces a stale file and is
// guarded by its mode like dockerd's (root and the socket's group).
func (l listenAddr) listen() (net.Listener, error) {
	if l.network == "unix" {
		if err := os.Remove(l.addr); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("remove stale socket %s: %w", l.addr, err)
		}
		ln, err := net.Listen("unix", l.addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", l.addr, err)
		}
		if err := os.Chmod(l.addr, 0o660); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chmod %s: %w", l.addr, err)
		}
		return ln, nil
	}
	var lc net.ListenConfig
	if l.reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", l.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", l.addr, err)
	}
	return ln, nil
}

// requireToken refuses requests whose bearer token identifies no one
// (package auth) and puts the caller's identity in the others' context,
// except agent dials, which carry their own per-container secret. The
// exemption is decided on the path the router sees (authn.Exempt), so an
// encoded or unclean path never reaches another handler without a token.
// A refused request is answered by fails: logged, slowed per source,
// connection closed.
func requireToken(a *auth.Authenticator, fails *authn.Failures, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authn.Exempt(r, proto.ConnectPath, proto.MeshPath) {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := authn.Bearer(r.Header.Get("Authorization"))
		id, err := a.Identify(r.Context(), tok)
		switch {
		case errors.Is(err, auth.ErrUnauthorized):
			reason := "no bearer token"
			if ok {
				reason = "wrong token"
			}
			fails.Fail(w, r, http.StatusUnauthorized, reason, auth.ErrUnauthorized.Error())
			return
		case err != nil:
			slog.Default().Error("authenticate", "err", err)
			auth.WriteError(w, http.StatusServiceUnavailable, "authentication is unavailable, try again")
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	})
}
