package sockq

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestAwaitReadWaitsForThePeersRead(t *testing.T) {
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("HTTP/1.1 101 UPGRADED\r\n\r\n")); err != nil {
		t.Fatal(err)
	}

	// Unread: AwaitRead gives up after max.
	start := time.Now()
	AwaitRead(c, 200*time.Millisecond)
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("returned after %v with the head unread", waited)
	}

	// Read: AwaitRead returns well before its max.
	read := make(chan struct{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		buf := make([]byte, 64)
		_, _ = peer.Read(buf)
		close(read)
	}()
	start = time.Now()
	AwaitRead(c, time.Minute)
	<-read
	if waited := time.Since(start); waited > 30*time.Second {
		t.Fatalf("waited %v though the peer read", waited)
	}
}

func TestAwaitReadIgnoresOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	start := time.Now()
	AwaitRead(a, time.Minute)
	if time.Since(start) > 30*time.Second {
		t.Fatal("waited on a connection that is not a unix socket")
	}
}
