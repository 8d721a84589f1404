package agenthub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// inboxSize is how many read frames may wait for the processor. The agent's
// per-stream window bounds the bytes among them.
const inboxSize = 1024

// conn is one authenticated WebSocket of one container's agent. serve owns
// it: it runs the reader and keepalive goroutines and the processing loop,
// and stops them all before it returns.
type conn struct {
	hub *Hub
	id  string
	ws  *websocket.Conn
	log *slog.Logger

	// ctx lives as long as the connection; cancel ends reads and backend calls.
	ctx    context.Context
	cancel context.CancelFunc

	// in carries frames from the reader to the processor; the reader closes
	// it after setting readErr.
	in      chan proto.Frame
	readErr error

	writeMu   sync.Mutex
	closeOnce sync.Once
	// done is closed once the connection is torn down and unregistered.
	done chan struct{}

	// acked is, per stream, the last stored data seq; processor only.
	acked map[uint32]uint64

	// stdinCredit: the agent credits consumed stdin (Hello.StdinCredit), so
	// sends of stdin keep at most proto.Window bytes per stream uncredited.
	// Set before the connection is registered.
	stdinCredit bool
	stdinMu     sync.Mutex
	// stdinOut is, per stdin stream, the bytes sent and not yet credited.
	stdinOut map[uint32]int
	// stdinChanged is closed and replaced on every credit.
	stdinChanged chan struct{}
}

func newConn(h *Hub, id string, ws *websocket.Conn) *conn {
	ctx, cancel := context.WithCancel(h.ctx)
	return &conn{
		hub:    h,
		id:     id,
		ws:     ws,
		log:    h.log.With("container", id),
		ctx:    ctx,
		cancel: cancel,
		in:     make(chan proto.Frame, inboxSize),
		done:   make(chan struct{}),
		acked:  make(map[uint32]uint64),

		stdinOut:     make(map[uint32]int),
		stdinChanged: make(chan struct{}),
	}
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer close(c.done)
	defer c.cancel()
	c.ws.SetReadLimit(readLimit)

	hello, err := c.readHello()
	if err != nil {
		c.log.Warn("agent greeting refused", "err", err)
		c.shut(websocket.StatusPolicyViolation, "first frame must be hello for this container")
		return
	}
	c.stdinCredit = hello.StdinCredit
	if err := c.hub.register(c); err != nil {
		c.log.Info("agent connection not registered", "err", err)
		c.shut(websocket.StatusGoingAway, "reconnect")
		return
	}
	c.log.Info("agent connected", "running", hello.Running)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.readLoop()
	}()
	go func() {
		defer wg.Done()
		c.keepalive()
	}()

	err = c.greet(hello)
	if err == nil {
		err = c.process()
	}
	switch {
	case err == nil, c.ctx.Err() != nil:
		// The agent or the hub ended the connection.
	case errors.Is(err, errProtocol):
		c.log.Warn("agent protocol violation", "err", err)
		c.shut(websocket.StatusPolicyViolation, "protocol violation")
	default:
		c.log.Error("agent connection failed; closing so the agent reconnects", "err", err)
		c.shut(websocket.StatusInternalError, "reconnect")
	}
	c.shut(websocket.StatusNormalClosure, "")
	wg.Wait()
	c.log.Info("agent connection ended", "read", c.readErr)
	c.hub.unregister(c)
}

// shut closes the WebSocket with code and reason (once, with the close
// handshake) and ends the connection's context.
func (c *conn) shut(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		_ = c.ws.Close(code, reason)
		c.cancel()
		_ = c.ws.CloseNow()
	})
}

// abort closes the WebSocket at once, without a handshake (the peer does not
// answer), and ends the connection's context.
func (c *conn) abort() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.ws.CloseNow()
	})
}

// errProtocol marks errors caused by a misbehaving agent.
var errProtocol = errors.New("protocol violation")

// readHello reads the first frame, which must be the Hello of c's container.
func (c *conn) readHello() (proto.Hello, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.hub.helloTimeout)
	defer cancel()
	f, err := c.readFrame(ctx)
	if err != nil {
		return proto.Hello{}, err
	}
	if f.Type != proto.TypeHello {
		return proto.Hello{}, fmt.Errorf("first frame is %s: %w", f.Type, errProtocol)
	}
	var hello proto.Hello
	if err := f.Decode(&hello); err != nil {
		return proto.Hello{}, fmt.Errorf("%w: %w", errProtocol, err)
	}
	if hello.ContainerID != c.id {
		return proto.Hello{}, fmt.Errorf("hello for container %q on a connection of %q: %w", hello.ContainerID, c.id, errProtocol)
	}
	return hello, nil
}

// readFrame reads one binary message and decodes its frame.
func (c *conn) readFrame(ctx context.Context) (proto.Frame, error) {
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return proto.Frame{}, fmt.Errorf("read frame: %w", err)
	}
	if typ != websocket.MessageBinary {
		return proto.Frame{}, fmt.Errorf("text message: %w", errProtocol)
	}
	f, err := proto.Unmarshal(b)
	if err != nil {
		return proto.Frame{}, fmt.Errorf("%w: %w", errProtocol, err)
	}
	return f, nil
}

// readLoop reads frames into c.in until the connection ends. Reading also
// answers pings and delivers pongs, so it never waits for the processor
// longer than the inbox is full.
func (c *conn) readLoop() {
	defer close(c.in)
	for {
		f, err := c.readFrame(c.ctx)
		if err != nil {
			c.readErr = err
			if errors.Is(err, errProtocol) {
				c.log.Warn("agent protocol violation", "err", err)
				c.shut(websocket.StatusPolicyViolation, "protocol violation")
			}
			return
		}
		if f.Type == proto.TypeStdinCredit {
			// Not ordered with output: handled here, so a store in
			// progress never holds back the client's input.
			c.credit(f.Stream, f.Seq)
			continue
		}
		select {
		case c.in <- f:
		case <-c.ctx.Done():
			c.readErr = c.ctx.Err()
			return
		}
	}
}

// credit returns n bytes of stdin stream's window.
func (c *conn) credit(stream uint32, n uint64) {
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	out, ok := c.stdinOut[stream]
	if !ok {
		return // nothing in flight (a stream closed, or sent on an older connection)
	}
	if uint64(out) <= n {
		delete(c.stdinOut, stream)
	} else {
		c.stdinOut[stream] = out - int(n)
	}
	close(c.stdinChanged)
	c.stdinChanged = make(chan struct{})
}

// reserveStdin waits until n more bytes of stdin stream fit in the window
// (always true for an agent without credits, and for a stream with nothing
// in flight) and counts them as sent. It fails when ctx or the connection
// ends.
func (c *conn) reserveStdin(ctx context.Context, stream uint32, n int) error {
	if !c.stdinCredit {
		return nil
	}
	for {
		c.stdinMu.Lock()
		out := c.stdinOut[stream]
		if out == 0 || out+n <= proto.Window {
			c.stdinOut[stream] = out + n
			c.stdinMu.Unlock()
			return nil
		}
		ch := c.stdinChanged
		c.stdinMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("stdin of %s: wait for the agent to take input: %w", c.id, ctx.Err())
		case <-c.ctx.Done():
			return fmt.Errorf("stdin of %s: wait for the agent to take input: connection ended", c.id)
		}
	}
}

// forgetStdin drops the window of a closed stdin stream.
func (c *conn) forgetStdin(stream uint32) {
	c.stdinMu.Lock()
	delete(c.stdinOut, stream)
	c.stdinMu.Unlock()
}

// keepalive pings the agent every pingInterval and closes the connection
// when a ping is not answered within the interval.
func (c *conn) keepalive() {
	t := time.NewTicker(c.hub.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.hub.pingInterval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Warn("agent ping failed; closing", "err", err)
				c.abort()
			}
			return
		}
	}
}

// send writes one frame; writes are serialized. ctx bounds only the wait
// for the writer: the write itself runs under the connection's context and
// writeTimeout, because canceling a WebSocket write closes the connection.
func (c *conn) send(ctx context.Context, f proto.Frame) error {
	b := f.Marshal()
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send %s to agent of %s: %w", f.Type, c.id, err)
	}
	wctx, cancel := context.WithTimeout(c.ctx, c.hub.writeTimeout)
	defer cancel()
	if err := c.ws.Write(wctx, websocket.MessageBinary, b); err != nil {
		return fmt.Errorf("send %s to agent of %s: %w", f.Type, c.id, err)
	}
	return nil
}

// sendControl writes a control frame with v as its JSON payload.
func (c *conn) sendControl(ctx context.Context, t proto.Type, v any) error {
	f, err := proto.Control(t, v)
	if err != nil {
		return err
	}
	if len(f.Payload) > proto.MaxControl {
		// The agent would drop the connection on it (its read limit), and
		// the request waiting for an answer would wait for good.
		return &engine.Error{Kind: engine.KindInvalid, Message: fmt.Sprintf(
			"%s message of %d bytes is over the %d an agent reads", t, len(f.Payload), proto.MaxControl)}
	}
	return c.send(ctx, f)
}

// greet loads the stored acked sequences, acknowledges them to the agent so
// it can drop its resend queue, and answers Start waiters whose run the
// agent reports as running (their Started frame was lost with the old
// connection).
func (c *conn) greet(hello proto.Hello) error {
	acked, err := c.hub.backend.AgentAcked(c.ctx, c.id)
	if err != nil {
		return fmt.Errorf("load acked sequences of %s: %w", c.id, err)
	}
	streams := make([]uint32, 0, len(acked))
	for s, seq := range acked {
		c.acked[s] = seq
		if seq > 0 {
			streams = append(streams, s)
		}
	}
	sort.Slice(streams, func(i, j int) bool { return streams[i] < streams[j] })
	for _, s := range streams {
		if err := c.send(c.ctx, proto.Frame{Type: proto.TypeAck, Stream: s, Seq: acked[s]}); err != nil {
			return err
		}
	}
	if hello.Running != 0 {
		c.hub.deliver(c.id, runKey(hello.Running), startResult{})
	}
	return nil
}
