package portbind

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// udpIdle is how long a UDP flow (one client address) lives without a
// datagram either way, as Docker's userland proxy keeps its per-client
// sockets (90 s).
const udpIdle = 90 * time.Second

// flow is one client address's datagrams to a container's UDP port: a
// stream of frames to the container.
type flow struct {
	conn net.Conn
	idle *time.Timer // ends the flow after udpIdle without a datagram
}

// serveUDP carries the datagrams arriving on pc to UDP port of container,
// one flow per client address, and the answers back to each client, until
// pc closes.
func (b *Binder) serveUDP(pc net.PacketConn, container string, port int) {
	defer b.wg.Done()
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
	buf := make([]byte, proto.MaxDatagram)
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
			ctx, cancel := context.WithTimeout(b.ctx, dialTimeout)
			conn, err := b.cfg.DialUDP(ctx, container, port)
			cancel()
			if err != nil {
				if b.ctx.Err() == nil {
					b.log.Info("published UDP port: container not reached", "container", container, "port", port, "err", err)
				}
				continue // the datagram is lost, as UDP allows
			}
			f = &flow{conn: conn, idle: time.AfterFunc(udpIdle, func() { conn.Close() })}
			mu.Lock()
			flows[key] = f
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.answer(pc, from, f)
				mu.Lock()
				if flows[key] == f {
					delete(flows, key)
				}
				mu.Unlock()
				conn.Close()
			}()
		}
		f.idle.Reset(udpIdle)
		if err := proto.WriteDatagram(f.conn, buf[:n]); err != nil {
			f.conn.Close()
		}
	}
}

// answer sends the container's datagrams of flow f back to the client at
// to, until the flow's stream ends (it was idle for udpIdle, or pc
// closed).
func (b *Binder) answer(pc net.PacketConn, to net.Addr, f *flow) {
	defer f.idle.Stop()
	buf := make([]byte, proto.MaxDatagram)
	for {
		n, err := proto.ReadDatagram(f.conn, buf)
		if err != nil {
			return
		}
		f.idle.Reset(udpIdle)
		if _, err := pc.WriteTo(buf[:n], to); err != nil {
			return
		}
	}
}
