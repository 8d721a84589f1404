// Package dockersock serves the Docker API socket bound into a container
// (-v /var/run/docker.sock:/var/run/docker.sock, proto.MountDockerSocket):
// the agent listens on a unix socket at the bind's destination and carries
// each accepted connection over its mesh to the control plane as a
// proto.MeshDocker stream, which the control plane serves with the Docker
// API as a client of the container's own namespace (DESIGN.md "The
// network plane"). Containers a process starts through it are siblings,
// as with Docker's socket bind.
package dockersock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/sockerless/sockerless/agent/proto"
)

// Dial opens a mesh stream to the hub.
type Dial func(ctx context.Context, open proto.MeshOpen) (net.Conn, error)

// Sockets are the Docker sockets of one instance.
type Sockets struct {
	dial   Dial
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	lns    []net.Listener
	conns  sync.WaitGroup
}

// Serve listens on every MountDockerSocket destination of ms (replacing
// whatever file is there, as docker's bind covers it) and serves until
// Close. A path it cannot listen on fails the whole call: the container
// would otherwise start without the socket it asked for.
func Serve(ms []proto.Mount, dial Dial, log *slog.Logger) (*Sockets, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sockets{dial: dial, log: log, ctx: ctx, cancel: cancel}
	for _, m := range ms {
		if m.Type != proto.MountDockerSocket {
			continue
		}
		ln, err := listen(m.Destination)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("docker socket at %s: %w", m.Destination, err)
		}
		s.lns = append(s.lns, ln)
		s.conns.Add(1)
		go s.accept(ln)
	}
	return s, nil
}

func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Docker's socket is root:docker 0660; a container's user may be
	// anyone, and the bind gives the container the daemon.
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (s *Sockets) accept(ln net.Listener) {
	defer s.conns.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serve(c)
		}()
	}
}

// serve carries one connection to the control plane.
func (s *Sockets) serve(c net.Conn) {
	stop := context.AfterFunc(s.ctx, func() { c.Close() })
	defer stop()
	remote, err := s.dial(s.ctx, proto.MeshOpen{Kind: proto.MeshDocker})
	if err != nil {
		s.log.Warn("docker socket: connect to the control plane", "err", err)
		c.Close()
		return
	}
	stopRemote := context.AfterFunc(s.ctx, func() { remote.Close() })
	defer stopRemote()
	proto.Splice(c, remote)
}

// Close stops listening, ends the connections and removes the sockets.
func (s *Sockets) Close() error {
	if s == nil {
		return nil
	}
	s.cancel()
	for _, ln := range s.lns {
		ln.Close() // a unix listener removes its file
	}
	s.conns.Wait()
	return nil
}
