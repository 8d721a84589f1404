package wsmux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"github.com/sockerless/sockerless/agent/proto"
)

// muxPair runs Mux on both ends of a real WebSocket and counts the
// messages the client side receives.
func muxPair(t testing.TB) (client, server *yamux.Session) {
	t.Helper()
	srvCh := make(chan *yamux.Session, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		s, err := Mux(ws, false, nil)
		if err != nil {
			t.Error(err)
			return
		}
		srvCh <- s
		<-s.CloseChan()
	}))
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := DialMux(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	server = <-srvCh
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func accept(t *testing.T, s *yamux.Session) net.Conn {
	t.Helper()
	c, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return proto.StreamConn(c)
}

func open(t *testing.T, s *yamux.Session) net.Conn {
	t.Helper()
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	return proto.StreamConn(c)
}

func TestMuxCarriesBulkIntact(t *testing.T) {
	client, server := muxPair(t)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sha256.Sum256(data)
	c := open(t, client)
	go func() {
		c.Write(data)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	s := accept(t, server)
	h := sha256.New()
	n, err := io.Copy(h, s)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("read %d bytes, %v; want %d", n, err, len(data))
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("bytes differ")
	}
}

func TestMuxStreamHalfCloses(t *testing.T) {
	client, server := muxPair(t)
	c := open(t, client)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	s := accept(t, server)
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v", got, err)
	}
	// The client's writes are closed; its reads are not.
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	s.(interface{ CloseWrite() error }).CloseWrite()
	back, err := io.ReadAll(c)
	if err != nil || string(back) != "pong" {
		t.Fatalf("client read %q, %v", back, err)
	}
}

// TestMuxStalledReaderBoundsTheWriter: nothing reads the server's end, so
// the client's writes stop after about one window, and all of it arrives
// once reading starts.
func TestMuxStalledReaderBoundsTheWriter(t *testing.T) {
	client, server := muxPair(t)
	c := open(t, client)
	var written atomic.Int64
	total := 16 * MuxWindow
	go func() {
		chunk := make([]byte, 32<<10)
		for written.Load() < int64(total) {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	s := accept(t, server)
	// Wait until the writer stops moving.
	var last int64 = -1
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		cur := written.Load()
		if cur == last && cur > 0 {
			break
		}
		last = cur
	}
	if w := written.Load(); w > int64(2*MuxWindow) || w >= int64(total) {
		t.Fatalf("writer got %d bytes out while nothing read (window %d)", w, MuxWindow)
	}
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != int64(total) {
		t.Fatalf("read %d, %v; want %d", n, err, total)
	}
}

// BenchmarkMuxStream measures one stream's throughput over Mux on a
// loopback WebSocket, written as Splice writes, from the dialing side
// (masked frames) and from the accepting side.
func BenchmarkMuxStream(b *testing.B) {
	for _, from := range []string{"client", "server"} {
		b.Run("from the "+from, func(b *testing.B) {
			client, server := muxPair(b)
			w, r := client, server
			if from == "server" {
				w, r = server, client
			}
			b.SetBytes(64 << 20)
			for i := 0; i < b.N; i++ {
				go func() {
					c, _ := w.Open()
					buf := make([]byte, 128<<10) // as proto.Splice writes
					for n := 0; n < 64<<20; n += len(buf) {
						c.Write(buf)
					}
					c.Close()
				}()
				s, _ := r.Accept()
				io.Copy(io.Discard, s)
				s.Close()
			}
		})
	}
}
