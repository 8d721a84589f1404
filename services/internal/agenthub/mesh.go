package agenthub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/wsmux"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// meshOpenTimeout bounds reading a stream's opening line and routing it.
const meshOpenTimeout = 30 * time.Second

// MeshRouter connects the streams agents open on their mesh: a process of
// a container connecting to a peer (proto.MeshPeer), to the client's
// machine (MeshHost) or to the Docker API (MeshDocker).
type MeshRouter interface {
	// RouteMesh returns the connection that the stream container id's
	// agent opened with open is spliced to. An error matching
	// syscall.ECONNREFUSED (proto.ErrRefused) answers as a closed port
	// does; any other error is sent to the agent as the reply's Error.
	RouteMesh(ctx context.Context, id string, open proto.MeshOpen) (net.Conn, error)
}

// SetMeshRouter sets who routes the streams agents open; without one they
// are refused. Call it before serving.
func (h *Hub) SetMeshRouter(r MeshRouter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.router = r
}

// meshConn is one agent's mesh connection.
type meshConn struct {
	id   string
	sess *yamux.Session
	log  *slog.Logger
}

// MeshHandler handles an agent's mesh WebSocket (GET proto.MeshPath),
// authenticated exactly as the control connection: a dial without the
// container's secret is refused before the upgrade and never replaces the
// live mesh. A dial with it replaces the container's older mesh (whose
// connections end). It returns when the mesh ends.
func (h *Hub) MeshHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ws, ok := h.accept(w, r)
		if !ok {
			return
		}
		defer h.handlers.Done()
		log := h.log.With("container", id, "part", "mesh")
		sess, err := wsmux.Mux(ws, false, log)
		if err != nil {
			ws.CloseNow()
			log.Error("mesh session", "err", err)
			return
		}
		m := &meshConn{id: id, sess: sess, log: log}
		if !h.registerMesh(m) {
			sess.Close()
			return
		}
		log.Debug("agent mesh connected")
		defer log.Debug("agent mesh ended")
		defer h.unregisterMesh(m)
		defer sess.Close()
		wsmux.ServeStreams(sess, func(st net.Conn) { h.serveAgentStream(m, st) })
	})
}

// registerMesh makes m its container's mesh, closing an older one; false
// once the hub is closed.
func (h *Hub) registerMesh(m *meshConn) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	old := h.meshes[m.id]
	h.meshes[m.id] = m
	close(h.meshChanged)
	h.meshChanged = make(chan struct{})
	h.mu.Unlock()
	if old != nil {
		m.log.Info("agent mesh reconnected; closing its older mesh")
		old.sess.Close()
	}
	return true
}

func (h *Hub) unregisterMesh(m *meshConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.meshes[m.id] == m {
		delete(h.meshes, m.id)
	}
}

// serveAgentStream routes one stream the agent opened and splices it.
func (h *Hub) serveAgentStream(m *meshConn, st net.Conn) {
	open, err := proto.ServeStream(st, meshOpenTimeout, func(open proto.MeshOpen) (net.Conn, error) {
		h.mu.Lock()
		r := h.router
		h.mu.Unlock()
		if r == nil {
			return nil, fmt.Errorf("%w: no route for %s streams", proto.ErrRefused, open.Kind)
		}
		ctx, cancel := context.WithTimeout(h.ctx, meshOpenTimeout)
		defer cancel()
		return r.RouteMesh(ctx, m.id, open)
	})
	if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		m.log.Info("mesh stream not routed", "kind", open.Kind, "err", err)
	}
}

// DialMesh opens a stream to container id's agent (proto.MeshDial: the
// agent connects to open.Addr inside its instance) and returns it once the
// agent has connected it. It waits for the agent's mesh while ctx lasts.
// An error matching syscall.ECONNREFUSED means nothing listens there.
func (h *Hub) DialMesh(ctx context.Context, id string, open proto.MeshOpen) (net.Conn, error) {
	m, err := h.awaitMesh(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("mesh of %s: %w", id, err)
	}
	st, err := m.sess.OpenStream()
	if err != nil {
		return nil, &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("mesh of %s: agent connection failed", id), Err: err}
	}
	return proto.DialStream(ctx, st, open)
}

// awaitMesh returns the mesh of container id, waiting for one.
func (h *Hub) awaitMesh(ctx context.Context, id string) (*meshConn, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, errHubClosed()
		}
		m := h.meshes[id]
		ch := h.meshChanged
		h.mu.Unlock()
		if m != nil && !m.sess.IsClosed() {
			return m, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("agent of container %s has no mesh connection", id), Err: ctx.Err()}
		}
	}
}
