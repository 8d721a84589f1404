package proto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// This file holds how a mesh stream is opened and joined to a TCP
// connection. Both ends of every stream (agent, hub, forwarder) must frame
// the opening lines and close the halves in the same way, so the code lives
// here, in the one package they share, rather than once per side.

// MaxLine bounds one opening line (MeshOpen, MeshReply and the forwarder
// link's lines); a longer one is a protocol error.
const MaxLine = 64 << 10

// ErrRefused says the far end of a mesh stream refused it: nothing listens
// at the address (MeshReply.Refused). It matches syscall.ECONNREFUSED with
// errors.Is, so callers treat it as any refused connect.
var ErrRefused error = refusedError{}

type refusedError struct{}

func (refusedError) Error() string        { return "connection refused" }
func (refusedError) Is(target error) bool { return target == syscall.ECONNREFUSED }

// WriteLine writes v as one line of JSON.
func WriteLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode line: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write line: %w", err)
	}
	return nil
}

// ReadLine reads one line of JSON into v. It reads byte by byte, so that
// nothing after the line is consumed: the bytes of the connection that
// follow belong to whoever reads next.
func ReadLine(r io.Reader, v any) error {
	var buf bytes.Buffer
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if buf.Len() >= MaxLine {
				return fmt.Errorf("read line: longer than %d bytes", MaxLine)
			}
			buf.WriteByte(b[0])
			continue
		}
		if err == io.EOF {
			return fmt.Errorf("read line: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fmt.Errorf("read line: %w", err)
		}
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fmt.Errorf("decode line: %w", err)
	}
	return nil
}

// OpenMesh sends open on a stream just opened and reads the answer: nil
// when the stream now carries the connection, an error matching ErrRefused
// when nothing listens, or the far end's error.
func OpenMesh(c io.ReadWriter, open MeshOpen) error {
	if err := WriteLine(c, open); err != nil {
		return err
	}
	var reply MeshReply
	if err := ReadLine(c, &reply); err != nil {
		return fmt.Errorf("mesh %s: %w", open.Kind, err)
	}
	switch {
	case reply.Refused:
		return fmt.Errorf("mesh %s %s: %w", open.Kind, meshTarget(open), ErrRefused)
	case reply.Error != "":
		return fmt.Errorf("mesh %s %s: %s", open.Kind, meshTarget(open), reply.Error)
	}
	return nil
}

func meshTarget(o MeshOpen) string {
	if o.Addr != "" {
		return o.Addr
	}
	return fmt.Sprintf("port %d", o.Port)
}

// AnswerMesh answers a stream's MeshOpen after trying what it asked: err
// nil accepts it, an error matching syscall.ECONNREFUSED (ErrRefused
// included) refuses it, any other error is sent as the reply's Error.
func AnswerMesh(w io.Writer, err error) error {
	var reply MeshReply
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNREFUSED):
		reply.Refused = true
	default:
		reply.Error = err.Error()
	}
	return WriteLine(w, reply)
}

// DialStream sends open on st, a stream just opened, and waits for the
// answer while ctx lasts. It returns st as a StreamConn carrying the
// connection, or closes st and returns OpenMesh's error.
func DialStream(ctx context.Context, st net.Conn, open MeshOpen) (net.Conn, error) {
	c := StreamConn(st)
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	err := OpenMesh(c, open)
	stop()
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ServeStream serves a stream the far end opened: it reads the MeshOpen
// (within timeout), asks connect for the connection to join it to,
// answers (AnswerMesh), and splices the two until both directions end. It
// returns connect's error, or the opening's; the stream is closed either
// way.
func ServeStream(st net.Conn, timeout time.Duration, connect func(MeshOpen) (net.Conn, error)) (MeshOpen, error) {
	c := StreamConn(st)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var open MeshOpen
	if err := ReadLine(c, &open); err != nil {
		c.Close()
		return open, fmt.Errorf("stream opening: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	conn, err := connect(open)
	if aerr := AnswerMesh(c, err); aerr != nil || err != nil {
		if conn != nil {
			conn.Close()
		}
		c.Close()
		if err == nil {
			err = aerr
		}
		return open, err
	}
	Splice(c, conn)
	return open, nil
}

// StreamConn adapts a multiplexed stream whose Close ends only its own
// writes (a yamux stream: the far end reads EOF, and reading goes on) to a
// connection that half-closes with CloseWrite, as a TCP connection does.
// Its Close ends the writes and reads what the far end still sends until
// the far end ends too, so a writer over there is never left blocked on a
// full window. Its CloseRead does the same without ending the writes.
func StreamConn(c net.Conn) net.Conn {
	if s, ok := c.(*streamConn); ok {
		return s
	}
	return &streamConn{Conn: c}
}

type streamConn struct {
	net.Conn
	drain sync.Once
}

// CloseWrite sends the end of the stream's bytes; reading goes on.
func (s *streamConn) CloseWrite() error { return s.Conn.Close() }

// CloseRead discards what the far end still sends.
func (s *streamConn) CloseRead() error {
	s.drain.Do(func() {
		// Bounded by the stream: it ends when the far end ends its
		// writes, or when the session ends.
		go func() { _, _ = io.Copy(io.Discard, s.Conn) }()
	})
	return nil
}

// Close ends the writes and discards what still comes.
func (s *streamConn) Close() error {
	err := s.Conn.Close()
	_ = s.CloseRead()
	return err
}

// spliceBuffer is how much Splice moves per write: each write is a yamux
// frame (and a WebSocket message), so larger writes cost fewer frames and
// system calls per byte.
const spliceBuffer = 128 << 10

// Splice carries bytes between a and b both ways until both directions have
// ended, then closes both, and returns the bytes copied each way. When one
// direction's source ends (EOF or an error), the destination's writes are
// closed (CloseWrite), so a half-closed connection stays half-open as under
// Docker's proxy; when a write fails, the source's reads are closed
// (CloseRead), so the far end of the source is not left blocked. A
// connection without CloseWrite is closed instead.
func Splice(a, b net.Conn) (ab, ba int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ba = pipe(a, b)
	}()
	ab = pipe(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return ab, ba
}

// pipe copies src to dst until src ends or dst fails, then closes what
// that direction needs closed.
func pipe(dst, src net.Conn) int64 {
	buf := make([]byte, spliceBuffer)
	var n int64
	for {
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				if cr, ok := src.(interface{ CloseRead() error }); ok {
					_ = cr.CloseRead()
				}
				break
			}
		}
		if rerr != nil {
			break
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return n
}
