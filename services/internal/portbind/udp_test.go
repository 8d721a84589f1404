package portbind

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/agent/proto"
)

// TestUDPFlows: datagrams sent to a published UDP port reach the
// container's port through a framed stream (here: straight to a local UDP
// server, as the agent sends them) and the answers come back to each
// client's own address.
func TestUDPFlows(t *testing.T) {
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
		}
	}()
	dials := 0
	b := New(Config{
		Dial: func(context.Context, string, int) (net.Conn, error) { return nil, net.ErrClosed },
		DialUDP: func(ctx context.Context, _ string, _ int) (net.Conn, error) {
			dials++
			// Both ends of a stream: the binder's, and the agent's side
			// spliced with a connected UDP socket.
			a, z := net.Pipe()
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			go proto.Splice(z, proto.FramedPacketConn(pc, srv.LocalAddr()))
			return a, nil
		},
	})
	defer b.Close()
	ports, err := b.Bind(Request{Container: "c", Run: 1, Ports: network.PortMap{
		network.MustParsePort("53/udp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	hp := ports[network.MustParsePort("53/udp")][0].HostPort
	for i, msg := range []string{"one", "two"} {
		c, err := net.Dial("udp", "127.0.0.1:"+hp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for k := 0; k < 2; k++ {
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if got := string(buf[:n]); got != strings.ToUpper(msg) {
				t.Fatalf("client %d: got %q", i, got)
			}
		}
	}
	if dials != 2 {
		t.Fatalf("%d flows for two clients", dials)
	}
}
