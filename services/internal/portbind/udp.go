package portbind

import (
	"context"
	"net"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// udpIdle is how long a UDP flow (one client address) lives without a
// datagram either way, as Docker's userland proxy keeps its per-client
// sockets (90 s).
const udpIdle = 90 * time.Second

// serveUDP carries the datagrams arriving on pc to UDP port of container,
// one flow (a framed stream through Config.DialUDP) per client address,
// and the answers back to each client, until pc closes.
func (b *Binder) serveUDP(pc net.PacketConn, container string, port int) {
	defer b.wg.Done()
	proto.ServeDatagrams(pc, udpIdle, func(net.Addr) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(b.ctx, dialTimeout)
		defer cancel()
		conn, err := b.cfg.DialUDP(ctx, container, port)
		if err != nil && b.ctx.Err() == nil {
			b.log.Info("published UDP port: container not reached", "container", container, "port", port, "err", err)
		}
		return conn, err
	})
}
