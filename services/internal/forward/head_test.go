package forward

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// unixPair returns the two ends of a unix stream connection.
func unixPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestRelayHeadPassesEverythingOnInOrder(t *testing.T) {
	for _, c := range []struct{ name, in string }{
		{"a head and the stream that came with it", "HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x06hello\n"},
		{"a head alone", "HTTP/1.1 101 UPGRADED\r\n\r\n"},
		{"bytes without a head", "not http at all"},
	} {
		t.Run(c.name, func(t *testing.T) {
			server, client := unixPair(t)
			got := make(chan string)
			go func() {
				b, _ := io.ReadAll(client)
				got <- string(b)
			}()
			rerr, werr := relayHead(server, strings.NewReader(c.in))
			if rerr != nil || werr != nil {
				t.Fatalf("relayHead: read %v, write %v", rerr, werr)
			}
			server.(*net.UnixConn).CloseWrite()
			if g := <-got; g != c.in {
				t.Fatalf("client read %q, want %q", g, c.in)
			}
		})
	}
}
