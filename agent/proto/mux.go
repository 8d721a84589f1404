package proto

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// The mesh (and the forwarder's link to the control plane, which carries
// published ports the same way) runs github.com/hashicorp/yamux over one
// WebSocket. Both ends must configure yamux alike, so Mux is defined here.
//
// The WebSocket is adapted by hand rather than with websocket.NetConn:
// yamux writes a frame's 12-byte header and its body in two calls, and
// NetConn would send each as a message of its own (two flushes per frame);
// here a data header waits for its body and both go out as one message.

// MuxWindow is the most bytes of one stream in flight (yamux's receive
// window): a reader that stops reading holds at most this much at each hop
// before the writer blocks.
const MuxWindow = 1 << 20

// muxHeader is the size of a yamux frame header.
const muxHeader = 12

// Mux runs yamux over ws: client is true on the side that dialed. The
// session owns ws from now on; closing the session closes it. Streams
// half-close (see StreamConn) and are never reset by a timer: a connection
// may stay half-open for as long as its ends keep it.
func Mux(ws *websocket.Conn, client bool, log *slog.Logger) (*yamux.Session, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ws.SetReadLimit(muxHeader + MuxWindow)
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = nil
	cfg.Logger = yamuxLogger{log}
	cfg.MaxStreamWindowSize = MuxWindow
	cfg.KeepAliveInterval = 15 * time.Second
	// Streams write at most 32 KiB a frame (Splice), so a frame waits
	// behind few others; this only catches a dead connection.
	cfg.ConnectionWriteTimeout = 30 * time.Second
	cfg.StreamCloseTimeout = 0
	conn := newWSConn(ws)
	if client {
		return yamux.Client(conn, cfg)
	}
	return yamux.Server(conn, cfg)
}

// ServeStreams hands every stream the far end of sess opens to serve, each
// in a goroutine of its own, until sess ends; then it waits for them all to
// return (streams end with their session).
func ServeStreams(sess *yamux.Session, serve func(net.Conn)) {
	var streams sync.WaitGroup
	defer streams.Wait()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			serve(st)
		}()
	}
}

// wsConn is the io.ReadWriteCloser yamux runs on: reads concatenate binary
// messages; each yamux frame is written as one message.
type wsConn struct {
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc

	r io.Reader // the message being read

	wmu  sync.Mutex
	head []byte // a data frame's header waiting for its body
}

func newWSConn(ws *websocket.Conn) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsConn{ws: ws, ctx: ctx, cancel: cancel}
}

// Read is called by yamux's one reader goroutine.
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.Reader(c.ctx)
			if err != nil {
				if s := websocket.CloseStatus(err); s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.MessageBinary {
				return 0, fmt.Errorf("mux: unexpected %v message", typ)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write is called by yamux's one sender goroutine, a frame's header and
// body in separate calls.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.head == nil && len(p) == muxHeader && p[1] == 0 /* data */ && binary.BigEndian.Uint32(p[8:12]) > 0 {
		c.head = append([]byte(nil), p...)
		return len(p), nil
	}
	w, err := c.ws.Writer(c.ctx, websocket.MessageBinary)
	if err != nil {
		return 0, err
	}
	if c.head != nil {
		head := c.head
		c.head = nil
		if _, err := w.Write(head); err != nil {
			return 0, err
		}
	}
	if _, err := w.Write(p); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the WebSocket at once: yamux has ended its session (and
// told the far end with its own go-away when it could), so no close
// handshake is waited for.
func (c *wsConn) Close() error {
	c.cancel()
	return c.ws.CloseNow()
}

// yamuxLogger sends yamux's log lines to slog at debug level: they report
// connections that end, which the owners of the sessions log themselves.
type yamuxLogger struct{ log *slog.Logger }

func (l yamuxLogger) Print(v ...any)                 { l.log.Debug(fmt.Sprint(v...)) }
func (l yamuxLogger) Printf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l yamuxLogger) Println(v ...any)               { l.log.Debug(fmt.Sprint(v...)) }
