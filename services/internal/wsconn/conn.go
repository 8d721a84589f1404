package wsconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	// MaxMessage is the largest binary message Write sends; larger writes are
	// split. Readers accept messages up to ReadLimit.
	MaxMessage = 64 << 10
	// ReadLimit is the largest message a Conn accepts from its peer. It is far
	// above MaxMessage so that peers writing big messages still fit.
	ReadLimit = 32 << 20
	// eofMarker is the text message announcing the end of the peer's writes.
	eofMarker = "EOF"
)

// ErrWriteClosed is returned by Write after CloseWrite.
var ErrWriteClosed = errors.New("wsconn: write after CloseWrite")

// Addr is a net.Addr of network "websocket" for ends without a better one.
type Addr string

// Network returns "websocket".
func (a Addr) Network() string { return "websocket" }

// String returns the address text.
func (a Addr) String() string { return string(a) }

// Options configure New.
type Options struct {
	// LocalAddr and RemoteAddr are reported by the Conn; nil means Addr("local")
	// and Addr("remote").
	LocalAddr, RemoteAddr net.Addr
	// KeepAlive, when positive, sends an empty binary message after every
	// KeepAlive of silence in both directions, so that idle streams survive
	// proxies. Unlike a WebSocket ping it needs no pong, so a peer that is
	// merely slow to read is never mistaken for a dead one.
	KeepAlive time.Duration
}

// Conn is a net.Conn over a WebSocket, with half-close (CloseWrite).
// Read, Write and the deadline setters may be called concurrently.
type Conn struct {
	ws     *websocket.Conn
	local  net.Addr
	remote net.Addr

	chunks  chan []byte   // binary payloads from readLoop; unbuffered
	readEnd chan struct{} // closed once readLoop will deliver no more bytes
	readErr error         // why the reading ended; written before readEnd closes
	wsDone  chan struct{} // closed when readLoop has returned

	readMu  sync.Mutex // serialises Read; guards pending
	pending []byte

	writeMu     sync.Mutex // serialises Write and CloseWrite; guards writeClosed
	writeClosed bool

	rdl, wdl deadline

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	lastUsed  atomic.Int64 // unix nanoseconds of the last message in either direction
}

// New wraps ws, on which nothing has been read yet, in a Conn. The Conn owns
// ws from now on: it reads it in a goroutine that ends when the WebSocket
// does, and Close closes it.
func New(ws *websocket.Conn, opts Options) *Conn {
	ws.SetReadLimit(ReadLimit)
	c := &Conn{
		ws:      ws,
		local:   opts.LocalAddr,
		remote:  opts.RemoteAddr,
		chunks:  make(chan []byte),
		readEnd: make(chan struct{}),
		wsDone:  make(chan struct{}),
		closed:  make(chan struct{}),
		rdl:     newDeadline(),
		wdl:     newDeadline(),
	}
	if c.local == nil {
		c.local = Addr("local")
	}
	if c.remote == nil {
		c.remote = Addr("remote")
	}
	c.touch()
	go c.readLoop()
	if opts.KeepAlive > 0 {
		go c.keepAlive(opts.KeepAlive)
	}
	return c
}

// readLoop reads messages for as long as the WebSocket lives, so that control
// frames (pings, close) are answered even after the peer's EOF marker.
func (c *Conn) readLoop() {
	defer close(c.wsDone)
	ended := false
	end := func(err error) {
		if !ended {
			ended = true
			c.readErr = err
			close(c.readEnd)
		}
	}
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			end(readError(err))
			return
		}
		c.touch()
		switch {
		case ended:
			// Nothing but control frames is expected after the EOF marker.
		case typ == websocket.MessageText:
			if string(b) != eofMarker {
				end(fmt.Errorf("wsconn: unexpected text message %.32q", b))
				_ = c.ws.Close(websocket.StatusUnsupportedData, "unexpected text message")
				return
			}
			end(io.EOF)
		case len(b) > 0:
			select {
			case c.chunks <- b:
			case <-c.closed:
				end(net.ErrClosed)
				return
			}
		}
	}
}

// readError turns the error that ended reading into what Read returns.
func readError(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return io.EOF
	}
	return fmt.Errorf("wsconn: read: %w", err)
}

// keepAlive sends an empty message after every d of silence until the
// connection ends.
func (c *Conn) keepAlive(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-c.wsDone:
			return
		case <-c.closed:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.lastUsed.Load())) < d {
			continue
		}
		// No deadline: under back-pressure the keepalive waits like any write.
		if err := c.ws.Write(context.Background(), websocket.MessageBinary, nil); err != nil {
			return
		}
		c.touch()
	}
}

func (c *Conn) touch() { c.lastUsed.Store(time.Now().UnixNano()) }

// Read reads stream bytes. It returns io.EOF after the peer's CloseWrite or
// Close once earlier bytes are consumed, os.ErrDeadlineExceeded when the read
// deadline passes (the Conn stays usable), and net.ErrClosed after Close.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if isDone(c.closed) {
		return 0, net.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.pending) == 0 {
		select {
		case b := <-c.chunks:
			c.pending = b
		case <-c.readEnd:
			return 0, c.readErr
		case <-c.rdl.expired():
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// Write sends p as one or more binary messages. A write deadline that passes
// while a message is being sent closes the whole connection (a WebSocket
// cannot resume a half-written frame); one already past fails the Write with
// os.ErrDeadlineExceeded and leaves the Conn usable.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if isDone(c.closed) {
		return 0, net.ErrClosed
	}
	if c.writeClosed {
		return 0, ErrWriteClosed
	}
	n := 0
	for len(p) > 0 {
		m := min(len(p), MaxMessage)
		if err := c.send(websocket.MessageBinary, p[:m]); err != nil {
			return n, err
		}
		n += m
		p = p[m:]
	}
	return n, nil
}

// CloseWrite tells the peer that nothing more will be written: its Read
// returns io.EOF after the bytes written so far. Reading continues to work.
func (c *Conn) CloseWrite() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if isDone(c.closed) {
		return net.ErrClosed
	}
	if c.writeClosed {
		return nil
	}
	if err := c.send(websocket.MessageText, []byte(eofMarker)); err != nil {
		return err
	}
	c.writeClosed = true
	return nil
}

// send writes one message under the write deadline. The caller holds writeMu.
func (c *Conn) send(typ websocket.MessageType, b []byte) error {
	ctx := context.Background()
	if dl := c.wdl.when(); !dl.IsZero() {
		if !time.Now().Before(dl) {
			return os.ErrDeadlineExceeded
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	if err := c.ws.Write(ctx, typ, b); err != nil {
		switch {
		case ctx.Err() != nil:
			return os.ErrDeadlineExceeded
		case isDone(c.closed):
			return net.ErrClosed
		}
		return fmt.Errorf("wsconn: write: %w", err)
	}
	c.touch()
	return nil
}

// Close closes the connection: blocked and later Reads and Writes return
// net.ErrClosed at once, and the WebSocket closing handshake runs in the
// background (bounded by the WebSocket library's few-second timeouts), so
// Close never waits for a peer that is slow to read. Bytes already written
// still reach the peer, whose Read then returns io.EOF. Calls after the first
// return net.ErrClosed.
func (c *Conn) Close() error {
	return c.close(websocket.StatusNormalClosure)
}

func (c *Conn) close(code websocket.StatusCode) error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = nil
		close(c.closed)
		go func() { _ = c.ws.Close(code, "") }()
	})
	return err
}

// Done is closed once the WebSocket has ended, whichever side closed it. A
// peer's CloseWrite does not close it.
func (c *Conn) Done() <-chan struct{} { return c.wsDone }

// LocalAddr returns the local address given to New.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the remote address given to New.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both the read and the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the time after which a pending or future Read fails
// with os.ErrDeadlineExceeded; the zero time clears it. Unread bytes are kept.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for Write and CloseWrite; the zero time
// clears it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
