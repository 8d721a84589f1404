package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// UDP rides a mesh stream as datagrams, each framed by its length (two
// bytes, big-endian): a stream carries one flow, one client address to one
// container port, as Docker's userland proxy keeps one socket per client.

// MaxDatagram is the largest UDP payload carried.
const MaxDatagram = 65507

// WriteDatagram writes p as one frame.
func WriteDatagram(w io.Writer, p []byte) error {
	if len(p) > MaxDatagram {
		return fmt.Errorf("datagram of %d bytes is too large", len(p))
	}
	buf := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(buf, uint16(len(p)))
	copy(buf[2:], p)
	_, err := w.Write(buf)
	return err
}

// ReadDatagram reads one frame into buf (at least MaxDatagram bytes) and
// returns its length.
func ReadDatagram(r io.Reader, buf []byte) (int, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n > len(buf) {
		return 0, fmt.Errorf("datagram of %d bytes does not fit", n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return 0, err
	}
	return n, nil
}

// FramedPacketConn turns a UDP socket into a byte stream of frames, to
// splice with a mesh stream: what is written is cut into frames, each sent
// to to as one datagram; what is read are the datagrams that arrive (from
// any address: a server bound to every address answers from the one the
// kernel picks, which on loopback need not be the one it was sent to),
// each framed. A datagram refused by the far end (ICMP port unreachable)
// is lost, as with UDP; closing the write side closes it.
func FramedPacketConn(pc net.PacketConn, to net.Addr) net.Conn {
	return &framedConn{pc: pc, to: to}
}

type framedConn struct {
	pc      net.PacketConn
	to      net.Addr
	mu      sync.Mutex
	pending []byte // written bytes not yet a whole frame
	rbuf    []byte // a framed datagram not yet read out
	buf     []byte
	close   sync.Once
}

func (f *framedConn) LocalAddr() net.Addr                { return f.pc.LocalAddr() }
func (f *framedConn) RemoteAddr() net.Addr               { return f.to }
func (f *framedConn) SetDeadline(t time.Time) error      { return f.pc.SetDeadline(t) }
func (f *framedConn) SetReadDeadline(t time.Time) error  { return f.pc.SetReadDeadline(t) }
func (f *framedConn) SetWriteDeadline(t time.Time) error { return f.pc.SetWriteDeadline(t) }

func (f *framedConn) Read(p []byte) (int, error) {
	for len(f.rbuf) == 0 {
		if f.buf == nil {
			f.buf = make([]byte, 2+MaxDatagram)
		}
		n, _, err := f.pc.ReadFrom(f.buf[2:])
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // nobody listened for the last datagram: it is lost
			}
			return 0, err
		}
		binary.BigEndian.PutUint16(f.buf, uint16(n))
		f.rbuf = f.buf[:2+n]
	}
	n := copy(p, f.rbuf)
	f.rbuf = f.rbuf[n:]
	return n, nil
}

func (f *framedConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, p...)
	for len(f.pending) >= 2 {
		n := int(binary.BigEndian.Uint16(f.pending))
		if len(f.pending) < 2+n {
			break
		}
		if _, err := f.pc.WriteTo(f.pending[2:2+n], f.to); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return 0, err
		}
		f.pending = f.pending[2+n:]
	}
	if len(f.pending) == 0 {
		f.pending = nil
	}
	return len(p), nil
}

// CloseWrite ends the flow: a datagram socket has no half-close.
func (f *framedConn) CloseWrite() error { return f.Close() }

func (f *framedConn) Close() error {
	var err error
	f.close.Do(func() {
		_ = f.pc.SetDeadline(time.Now())
		err = f.pc.Close()
	})
	return err
}

// ServeDatagrams carries the datagrams arriving on pc as flows, one per
// source address: the first datagram from an address dials its stream
// (dial; a failed dial loses the datagram, as UDP may), each datagram is
// framed onto it, and the frames coming back are sent to that address.
// A flow ends after idle without a datagram either way. It returns once
// pc is closed and every flow has ended.
func ServeDatagrams(pc net.PacketConn, idle time.Duration, dial func(from net.Addr) (net.Conn, error)) {
	type flow struct {
		conn  net.Conn
		timer *time.Timer
	}
	var mu sync.Mutex
	flows := map[string]*flow{}
	var wg sync.WaitGroup
	defer func() {
		mu.Lock()
		for _, f := range flows {
			f.conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	buf := make([]byte, MaxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		key := from.String()
		mu.Lock()
		f := flows[key]
		mu.Unlock()
		if f == nil {
			conn, err := dial(from)
			if err != nil {
				continue
			}
			f = &flow{conn: conn, timer: time.AfterFunc(idle, func() { conn.Close() })}
			mu.Lock()
			flows[key] = f
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer f.timer.Stop()
				back := make([]byte, MaxDatagram)
				for {
					n, err := ReadDatagram(conn, back)
					if err != nil {
						break
					}
					f.timer.Reset(idle)
					if _, err := pc.WriteTo(back[:n], from); err != nil {
						break
					}
				}
				conn.Close()
				mu.Lock()
				if flows[key] == f {
					delete(flows, key)
				}
				mu.Unlock()
			}()
		}
		f.timer.Reset(idle)
		if err := WriteDatagram(f.conn, buf[:n]); err != nil {
			f.conn.Close()
		}
	}
}
