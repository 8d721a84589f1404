// Package dockersock is the control plane's end of the Docker socket bound
// into a container (-v /var/run/docker.sock:/var/run/docker.sock). The
// container's agent serves a unix socket at the bind's destination and
// carries each connection to the hub as a proto.MeshDocker stream; Connect
// turns such a stream into a connection served by the Docker API as a
// client of the container's own namespace: its identity is the container
// the agent authenticated for (never a token; an auth.Identity of the
// container's namespace with the member role), so `docker ps` there lists
// the namespace's containers, and containers it creates are siblings that
// belong to the same client side (published ports bind where the outer
// container's would, as on Docker's host).
package dockersock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Caller is who speaks on a Docker socket connection.
type Caller struct {
	Namespace string
	// Container is the ID of the container whose socket it is.
	Container string
	// Client is the container's client side (engine.Container.Client):
	// its siblings are created for it.
	Client string
	// Sockets are the container's Docker socket destinations (a nested
	// bind of one of them is a Docker socket bind too).
	Sockets []string
}

type callerKey struct{}

// FromContext returns the caller of a request that came through a
// container's Docker socket.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Containers finds the container whose agent opened a stream.
type Containers interface {
	GetContainer(ctx context.Context, ns, ref string) (*engine.Container, error)
}

// Server serves the Docker API on the connections Connect makes.
type Server struct {
	store Containers
	srv   *http.Server
	ln    *chanListener
	done  chan struct{}
}

// New serves api (the Docker API handler) on Docker socket connections
// until Close; base is every request's parent context.
func New(base context.Context, store Containers, api http.Handler, log *slog.Logger) *Server {
	s := &Server{store: store, ln: newChanListener(), done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if cc, ok := c.(*callerConn); ok {
				ctx = auth.WithIdentity(ctx, auth.Identity{Member: "container:" + cc.caller.Container, Namespace: cc.caller.Namespace, Role: auth.RoleMember})
				return context.WithValue(ctx, callerKey{}, cc.caller)
			}
			return ctx
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("serve docker sockets", "err", err)
		}
	}()
	return s
}

// Connect returns a connection that the Docker API serves as container id
// of namespace ns (agenthub's MeshRouter for proto.MeshDocker).
func (s *Server) Connect(ctx context.Context, ns, id string) (net.Conn, error) {
	c, err := s.store.GetContainer(ctx, ns, id)
	if err != nil {
		return nil, fmt.Errorf("docker socket of %s: %w", id, err)
	}
	sockets := engine.DockerSockets(c)
	if len(sockets) == 0 {
		// Only a container the user gave the socket gets the API.
		return nil, fmt.Errorf("container %s has no Docker socket bound", id)
	}
	mine, theirs, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("docker socket of %s: %w", id, err)
	}
	caller := Caller{Namespace: ns, Container: id, Client: c.Client, Sockets: sockets}
	if !s.ln.push(&callerConn{UnixConn: theirs, caller: caller}) {
		mine.Close()
		theirs.Close()
		return nil, errors.New("docker socket: the control plane is shutting down")
	}
	return mine, nil
}

// Close stops serving and ends the connections (hijacked streams too).
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.srv.Close()
	<-s.done
	return nil
}

// callerConn is a served connection with its caller; embedding the
// concrete type keeps CloseWrite for hijacked streams' half-close.
type callerConn struct {
	*net.UnixConn
	caller Caller
}

// socketPair returns the two ends of a connected unix stream socket:
// unlike net.Pipe, each half-closes (CloseWrite), which docker exec -i
// needs for its stdin's end.
func socketPair() (*net.UnixConn, *net.UnixConn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	conn := func(fd int) (*net.UnixConn, error) {
		f := os.NewFile(uintptr(fd), "docker-socket")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			return nil, err
		}
		return c.(*net.UnixConn), nil
	}
	a, err := conn(fds[0])
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := conn(fds[1])
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// chanListener is a net.Listener fed by Connect.
type chanListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return sockAddr{} }

type sockAddr struct{}

func (sockAddr) Network() string { return "unix" }
func (sockAddr) String() string  { return "docker-socket" }
