package agenthub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/authn"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Default timings of a Hub.
const (
	defaultPingInterval   = 15 * time.Second
	defaultHelloTimeout   = 30 * time.Second
	defaultWriteTimeout   = 15 * time.Second
	defaultReconnectGrace = 15 * time.Second
	defaultCloseTimeout   = 3 * time.Second
)

// readLimit is the largest WebSocket message the hub reads.
const readLimit = proto.HeaderSize + proto.MaxPayload*2

// Hub accepts agent connections and implements engine.Agents. Mount it at
// proto.ConnectPath. The zero value is not usable; call New.
type Hub struct {
	backend Backend
	log     *slog.Logger

	// Timings; unit tests shorten them before the first request.
	pingInterval   time.Duration
	helloTimeout   time.Duration
	writeTimeout   time.Duration
	reconnectGrace time.Duration
	// reqSeq numbers Requests to agents.
	reqSeq       atomic.Uint64
	closeTimeout time.Duration

	// ctx is the parent of every connection's context; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	// handlers counts ServeHTTP calls in progress; Close waits for them.
	handlers sync.WaitGroup

	mu     sync.Mutex
	closed bool
	// conns holds the current (authenticated, greeted) connection per container.
	conns map[string]*conn
	// changed is closed and replaced whenever conns gains a connection or
	// the hub closes; Session and Start waiters watch it.
	changed chan struct{}
	// waiters holds pending Start calls per container and run. They belong
	// to the container, not to a connection, so an answer arriving on a
	// reconnected agent's connection still reaches them.
	waiters map[string]map[string]*startWaiter
	// meshes holds the current mesh connection per container; meshChanged
	// is closed and replaced whenever it gains one or the hub closes.
	meshes      map[string]*meshConn
	meshChanged chan struct{}
	router      MeshRouter
	// authFailed, if set, is told of every refused agent credential (the
	// audit trail); set before serving.
	authFailed func(r *http.Request, reason string)
}

// SetAuthFailed has f told of every agent dial refused for its
// credentials (not of dials refused for now). Call it before serving.
func (h *Hub) SetAuthFailed(f func(r *http.Request, reason string)) { h.authFailed = f }

func (h *Hub) refused(r *http.Request, reason string) {
	if h.authFailed != nil {
		h.authFailed(r, reason)
	}
}

var _ engine.Agents = (*Hub)(nil)

// New returns a Hub that persists through b and logs to logger.
func New(b Backend, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		backend:        b,
		log:            logger,
		pingInterval:   defaultPingInterval,
		helloTimeout:   defaultHelloTimeout,
		writeTimeout:   defaultWriteTimeout,
		reconnectGrace: defaultReconnectGrace,
		closeTimeout:   defaultCloseTimeout,
		ctx:            ctx,
		cancel:         cancel,
		conns:          make(map[string]*conn),
		changed:        make(chan struct{}),
		waiters:        make(map[string]map[string]*startWaiter),
		meshes:         make(map[string]*meshConn),
		meshChanged:    make(chan struct{}),
	}
}

// ServeHTTP handles an agent's WebSocket upgrade (GET proto.ConnectPath). The
// request must carry proto.HeaderContainer and "Authorization: Bearer
// <secret>"; without the right secret it is refused with 401 before the
// upgrade, and an agent whose instance the engine has ended with
// proto.StatusInstanceEnded. It returns when the connection ends.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ws, ok := h.accept(w, r)
	if !ok {
		return
	}
	defer h.handlers.Done()
	newConn(h, id, ws).serve()
}

// accept authenticates an agent's WebSocket upgrade (the control
// connection's or the mesh's) and upgrades it. When ok, the caller owns a
// registered handler (h.handlers) and must call h.handlers.Done when done.
func (h *Hub) accept(w http.ResponseWriter, r *http.Request) (id string, ws *websocket.Conn, ok bool) {
	id = r.Header.Get(proto.HeaderContainer)
	secret, ok := authn.Bearer(r.Header.Get(proto.HeaderAuthorization))
	if id == "" || !ok {
		h.refused(r, "agent credentials missing")
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusUnauthorized, "agent credentials required")
		return "", nil, false
	}
	if !h.enter() {
		writeError(w, http.StatusServiceUnavailable, "agent hub is shutting down")
		return "", nil, false
	}
	if err := h.backend.AuthorizeAgent(r.Context(), id, secret); err != nil {
		h.handlers.Done()
		if errors.Is(err, engine.ErrInstanceEnded) {
			// For good: the agent ends its instance (see
			// proto.StatusInstanceEnded) rather than dial again.
			h.log.Info("agent of an ended instance refused", "container", id)
			w.Header().Set("Connection", "close")
			writeError(w, proto.StatusInstanceEnded, err.Error())
			return "", nil, false
		}
		if engine.KindOf(err) == engine.KindUnavailable {
			// Not now (the store is unreachable, or another control plane
			// waits for this agent): the agent dials again.
			h.log.Warn("agent refused for now", "container", id, "err", err)
			// A new connection for the next dial: behind one address
			// shared by several control planes it may reach another.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "agent authorization unavailable")
			return "", nil, false
		}
		h.log.Warn("agent refused", "container", id, "remote", r.RemoteAddr, "err", err)
		h.refused(r, "agent secret refused")
		w.Header().Set("Connection", "close") // a failed dial holds no connection
		writeError(w, http.StatusUnauthorized, "agent authentication failed")
		return "", nil, false
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		// Accept has written the response.
		h.handlers.Done()
		h.log.Warn("agent upgrade failed", "container", id, "err", err)
		return "", nil, false
	}
	return id, ws, true
}

// Connected reports whether the agent of container id has a live connection.
func (h *Hub) Connected(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id] != nil
}

// Session waits until the agent of container id is connected and returns a
// session that drives it, through whichever connection is current at each
// call. It returns ctx's error (wrapped) if the agent does not connect in
// time, and a KindUnavailable error once the hub is closed.
func (h *Hub) Session(ctx context.Context, id string) (engine.AgentSession, error) {
	if _, err := h.await(ctx, id); err != nil {
		return nil, fmt.Errorf("wait for agent of %s: %w", id, err)
	}
	return &session{hub: h, id: id}, nil
}

// Close refuses new connections (503), closes every connection with
// StatusGoingAway and reason "reconnect" (cutting off agents that do not
// answer the close handshake within a few seconds), fails pending Session
// waits with KindUnavailable, and waits for every connection to end.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.changed)
	h.changed = make(chan struct{})
	close(h.meshChanged)
	h.meshChanged = make(chan struct{})
	conns := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	meshes := make([]*meshConn, 0, len(h.meshes))
	for _, m := range h.meshes {
		meshes = append(meshes, m)
	}
	h.mu.Unlock()
	// Connections the mesh carries end now; agents dial it again.
	for _, m := range meshes {
		m.sess.Close()
	}

	// Close handshakes run in parallel; agents that do not answer within
	// closeTimeout are cut off by canceling every connection's context.
	all := make(chan struct{})
	go func() {
		defer close(all)
		for _, c := range conns {
			<-c.done
		}
	}()
	for _, c := range conns {
		go c.shut(websocket.StatusGoingAway, "reconnect")
	}
	t := time.NewTimer(h.closeTimeout)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	}
	// Also ends connections still greeting or registering.
	h.cancel()
	<-all
	h.handlers.Wait()
	return nil
}

// enter registers a ServeHTTP call; false once the hub is closed.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.handlers.Add(1)
	return true
}

// await returns the current connection of container id, waiting for one.
func (h *Hub) await(ctx context.Context, id string) (*conn, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, errHubClosed()
		}
		if c := h.conns[id]; c != nil {
			h.mu.Unlock()
			return c, nil
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// current returns the live connection of container id or a KindUnavailable
// error.
func (h *Hub) current(id string) (*conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed()
	}
	if c := h.conns[id]; c != nil {
		return c, nil
	}
	return nil, &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf("agent of container %s is not connected", id)}
}

// register makes c the current connection of its container. An older
// connection is closed first, and register waits until it has finished
// (including any store in flight), so c reads acked sequences that include
// everything the old one stored.
func (h *Hub) register(c *conn) error {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return errHubClosed()
		}
		old := h.conns[c.id]
		if old == nil {
			h.conns[c.id] = c
			close(h.changed)
			h.changed = make(chan struct{})
			h.mu.Unlock()
			return nil
		}
		h.mu.Unlock()
		c.log.Info("agent reconnected; closing its older connection")
		// The agent has abandoned the old connection: no close handshake.
		old.abort()
		select {
		case <-old.done:
		case <-c.ctx.Done():
			return fmt.Errorf("replace older connection: %w", c.ctx.Err())
		}
	}
}

// unregister removes c if it is still the current connection of its
// container and tells the backend the agent is gone.
func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	cur := h.conns[c.id] == c
	if cur {
		delete(h.conns, c.id)
	}
	h.mu.Unlock()
	if cur {
		h.backend.AgentGone(c.id)
	}
}

// errHubClosed is the error of every call after Close.
func errHubClosed() error {
	return &engine.Error{Kind: engine.KindUnavailable, Message: "agent hub is shutting down"}
}

// writeError writes a Docker-style error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}
