// Package wsmux runs github.com/hashicorp/yamux over one WebSocket: the
// agents' mesh and the forwarders' links use it at both ends. It is apart
// from package proto so that code needing only the protocol's types (the
// engine) does not take in a WebSocket library.
package wsmux

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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

// DialMux dials a WebSocket to url with header and runs yamux on it as
// the client (see Mux). Its connection batches the writes of each message:
// the WebSocket library masks a client's frames in 4 KiB pieces and would
// make a system call of each.
func DialMux(ctx context.Context, url string, header http.Header, log *slog.Logger) (*yamux.Session, *http.Response, error) {
	var bc *batchConn
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			bc = &batchConn{Conn: c}
			return bc, nil
		},
		TLSHandshakeTimeout: 30 * time.Second,
		// HTTP/1.1: a WebSocket upgrade.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header, HTTPClient: &http.Client{Transport: tr}, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, resp, err
	}
	sess, err := mux(ws, true, bc, log)
	if err != nil {
		ws.CloseNow()
		return nil, resp, err
	}
	return sess, resp, nil
}

// Mux runs yamux over ws: client is true on the side that dialed. The
// session owns ws from now on; closing the session closes it. Streams
// half-close (see StreamConn) and are never reset by a timer: a connection
// may stay half-open for as long as its ends keep it.
func Mux(ws *websocket.Conn, client bool, log *slog.Logger) (*yamux.Session, error) {
	return mux(ws, client, nil, log)
}

func mux(ws *websocket.Conn, client bool, bc *batchConn, log *slog.Logger) (*yamux.Session, error) {
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
	conn.batch = bc
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

	wmu   sync.Mutex
	head  []byte     // a data frame's header waiting for its body
	buf   []byte     // header and body of the message being written
	batch *batchConn // nil, or the connection whose writes it batches
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
	msg := p
	if c.head != nil {
		// One frame for header and body: the library writes each Write of
		// a streamed message as a frame of its own.
		c.buf = append(append(c.buf[:0], c.head...), p...)
		msg, c.head = c.buf, nil
	}
	if c.batch != nil {
		c.batch.begin()
	}
	err := c.ws.Write(c.ctx, websocket.MessageBinary, msg)
	if c.batch != nil {
		if ferr := c.batch.flush(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// batchConn is a network connection whose writes, between begin and
// flush, are kept and written at once.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// flush writes what was kept; the connection writes directly again.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
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
