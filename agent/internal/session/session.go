package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/sockerless/sockerless/agent/proto"
)

// Handler receives the hub's commands. The Session calls its methods one at a
// time from its read loop; they must return quickly.
type Handler interface {
	// Start runs the container's process.
	Start(s proto.Start)
	// Signal delivers a signal to the running process, if any (with
	// s.All: to every process of the instance but the agent).
	Signal(s proto.Signal)
	// Stdin is input for a stdin stream (proto.StreamStdin: the running
	// process; an exec's stdin stream: that exec); the handler owns p.
	Stdin(stream uint32, p []byte)
	// StdinClose closes a stdin stream.
	StdinClose(stream uint32)
	// ExecStart runs an exec.
	ExecStart(e proto.ExecStart)
	// Resize sets the terminal size of the process or an exec.
	Resize(r proto.Resize)
	// Request asks for information; the handler answers with Respond.
	Request(r proto.Request)
	// Shutdown ends the instance: the container was removed.
	Shutdown()
	// Network replaces the container's network view (proto.TypeNetwork).
	Network(v proto.NetworkView)
}

// Config configures a Session. Zero durations take the defaults noted.
type Config struct {
	// CallbackURL is the hub's base URL (ws:// or wss://); the Session dials
	// CallbackURL + proto.ConnectPath.
	CallbackURL string
	ContainerID string
	// Secret authenticates the agent; it is sent as a bearer token and
	// never logged.
	Secret  string
	Handler Handler
	Logger  *slog.Logger

	PingInterval time.Duration // keepalive period, default 15s
	PingTimeout  time.Duration // a pong later than this drops the connection, default 15s
	DialTimeout  time.Duration // one dial attempt, default 10s
	GiveUpAfter  time.Duration // failing dials for this long end Run, default 60s
	ExitResend   time.Duration // re-send an unacked Exit this often, default 2s
	MinBackoff   time.Duration // first redial delay, default 100ms
	MaxBackoff   time.Duration // longest redial delay, default 2s
}

// ErrUnreachable is returned by Run when the hub could not be reached for
// longer than GiveUpAfter.
var ErrUnreachable = errors.New("hub unreachable")

// ErrInstanceEnded is returned by Run when the hub refused a dial with
// proto.StatusInstanceEnded: the control plane has ended this instance.
var ErrInstanceEnded = errors.New("the control plane has ended this instance")

// Session is the agent's side of its hub connection, across reconnects.
type Session struct {
	cfg Config
	url string

	mu      sync.Mutex
	order   uint64
	streams map[uint32]*stream
	ctrl    []item // control frames not yet written
	exits   []*pendingExit
	// credits are, per stdin stream, consumed bytes not yet credited to
	// the hub (proto.TypeStdinCredit).
	credits map[uint32]uint64
	running uint32
	// listening is the latest proto.Listening list (nil: none yet);
	// listenSent says the current connection has it.
	listening  []int
	listenSent bool
	wake       chan struct{} // wakes the writer; buffered 1
}

// New returns a Session; Run connects it.
func New(cfg Config) *Session {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.PingInterval, 15*time.Second)
	def(&cfg.PingTimeout, 15*time.Second)
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.GiveUpAfter, 60*time.Second)
	def(&cfg.ExitResend, 2*time.Second)
	def(&cfg.MinBackoff, 100*time.Millisecond)
	def(&cfg.MaxBackoff, 2*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Session{
		cfg:        cfg,
		listenSent: true,
		url:        strings.TrimSuffix(cfg.CallbackURL, "/") + proto.ConnectPath,
		streams:    map[uint32]*stream{},
		credits:    map[uint32]uint64{},
		wake:       make(chan struct{}, 1),
	}
}

// Run keeps the Session connected until ctx ends (it then closes the
// connection and returns nil) or the hub stays unreachable for GiveUpAfter
// (it returns an error wrapping ErrUnreachable). A refused dial (401/403)
// counts as unreachable: the hub may be restarting. A dial refused with
// proto.StatusInstanceEnded ends Run at once with an error wrapping
// ErrInstanceEnded.
func (s *Session) Run(ctx context.Context) error {
	log := s.cfg.Logger
	backoff := s.cfg.MinBackoff
	var failingSince time.Time
	for {
		c, err := s.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrInstanceEnded) {
				return err
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if d := time.Since(failingSince); d >= s.cfg.GiveUpAfter {
				return fmt.Errorf("%w for %s: %v", ErrUnreachable, d.Round(time.Second), err)
			}
			log.Warn("dial hub", "err", err, "retryIn", backoff)
		} else {
			failingSince = time.Time{}
			began := time.Now()
			err := s.serveConn(ctx, c)
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("hub connection lost", "err", err)
			if time.Since(began) > s.cfg.MaxBackoff {
				backoff = s.cfg.MinBackoff
			}
			failingSince = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// dial opens one connection to the hub.
func (s *Session) dial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, s.url, &websocket.DialOptions{HTTPHeader: proto.AgentHeader(s.cfg.ContainerID, s.cfg.Secret)})
	if err != nil {
		if resp != nil && resp.StatusCode == proto.StatusInstanceEnded {
			return nil, fmt.Errorf("%w: %w", ErrInstanceEnded, proto.DialError(s.url, resp, err))
		}
		return nil, proto.DialError(s.url, resp, err)
	}
	c.SetReadLimit(proto.HeaderSize + proto.MaxControl)
	return c, nil
}

// serveConn says Hello on c, then reads, writes and pings until c fails or
// ctx ends.
func (s *Session) serveConn(ctx context.Context, c *websocket.Conn) error {
	connCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer c.CloseNow()

	s.mu.Lock()
	hello := s.resetLocked()
	s.mu.Unlock()
	hf, err := proto.Control(proto.TypeHello, hello)
	if err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	err = c.Write(wctx, websocket.MessageBinary, hf.Marshal())
	wcancel()
	if err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	s.cfg.Logger.Info("connected to hub", "acked", hello.Acked, "running", hello.Running)

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context, *websocket.Conn) error{s.readLoop, s.writeLoop, s.pingLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- loop(connCtx, c)
		}()
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
		// Say goodbye; the reader is still running to receive the answer.
		_ = c.Close(websocket.StatusNormalClosure, "instance ending")
	}
	cancel()
	_ = c.CloseNow()
	wg.Wait()
	return err
}

func (s *Session) readLoop(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if typ != websocket.MessageBinary {
			s.cfg.Logger.Warn("ignoring non-binary message from hub")
			continue
		}
		f, err := proto.Unmarshal(b)
		if err != nil {
			s.cfg.Logger.Warn("ignoring bad frame from hub", "err", err)
			continue
		}
		s.dispatch(f)
	}
}

// dispatch acts on one frame from the hub.
func (s *Session) dispatch(f proto.Frame) {
	h, log := s.cfg.Handler, s.cfg.Logger
	switch f.Type {
	case proto.TypeAck:
		s.ack(f.Stream, f.Seq)
	case proto.TypeExitAck:
		var a proto.ExitAck
		if err := f.Decode(&a); err != nil {
			log.Warn("bad exit-ack", "err", err)
			return
		}
		s.exitAck(runKey(a.Run))
	case proto.TypeExecExitAck:
		var a proto.ExecExitAck
		if err := f.Decode(&a); err != nil {
			log.Warn("bad exec-exit-ack", "err", err)
			return
		}
		s.exitAck(execKey(a.ID))
	case proto.TypeExecStart:
		var es proto.ExecStart
		if err := f.Decode(&es); err != nil {
			log.Warn("bad exec-start", "err", err)
			return
		}
		h.ExecStart(es)
	case proto.TypeResize:
		var r proto.Resize
		if err := f.Decode(&r); err != nil {
			log.Warn("bad resize", "err", err)
			return
		}
		h.Resize(r)
	case proto.TypeStart:
		var st proto.Start
		if err := f.Decode(&st); err != nil {
			log.Warn("bad start", "err", err)
			return
		}
		h.Start(st)
	case proto.TypeSignal:
		var sig proto.Signal
		if err := f.Decode(&sig); err != nil {
			log.Warn("bad signal", "err", err)
			return
		}
		h.Signal(sig)
	case proto.TypeRequest:
		var r proto.Request
		if err := f.Decode(&r); err != nil {
			log.Warn("bad request", "err", err)
			return
		}
		h.Request(r)
	case proto.TypeStdin:
		h.Stdin(f.Stream, f.Payload)
	case proto.TypeStdinClose:
		h.StdinClose(f.Stream)
	case proto.TypeShutdown:
		h.Shutdown()
	case proto.TypeNetwork:
		var v proto.NetworkView
		if err := f.Decode(&v); err != nil {
			log.Warn("bad network view", "err", err)
			return
		}
		h.Network(v)
	default:
		log.Warn("ignoring unexpected frame from hub", "type", f.Type.String())
	}
}

func (s *Session) writeLoop(ctx context.Context, c *websocket.Conn) error {
	tick := time.NewTicker(s.cfg.ExitResend)
	defer tick.Stop()
	for {
		s.mu.Lock()
		f, commit, ok := s.nextLocked()
		s.mu.Unlock()
		if !ok {
			select {
			case <-s.wake:
			case <-tick.C:
				s.mu.Lock()
				s.resendExitsLocked()
				s.mu.Unlock()
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		if err := c.Write(ctx, websocket.MessageBinary, f.Marshal()); err != nil {
			return fmt.Errorf("write %s: %w", f.Type, err)
		}
		s.mu.Lock()
		commit()
		s.mu.Unlock()
	}
}

func (s *Session) pingLoop(ctx context.Context, c *websocket.Conn) error {
	tick := time.NewTicker(s.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PingTimeout)
		err := c.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}
