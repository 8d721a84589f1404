package wsconn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pair returns two connected Conns: client was dialled, server accepted
// through a Listener mounted on an httptest server.
func pair(t *testing.T, keepAlive time.Duration) (client, server *Conn) {
	t.Helper()
	l := NewListener(nil)
	hs := httptest.NewServer(l)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { _ = l.Close() })

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := Dial(ctx, hs.URL, DialOptions{KeepAlive: keepAlive})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	select {
	case c := <-accepted:
		server = c.(*Conn)
	case <-ctx.Done():
		t.Fatal("listener did not accept the tunnel")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// readAll reads c until EOF or error with a time limit.
func readAll(t *testing.T, c net.Conn) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	return io.ReadAll(c)
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		{"short message arrives intact", []byte("hello")},
		{"message larger than MaxMessage arrives intact", bytes.Repeat([]byte("0123456789abcdef"), MaxMessage/8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t, 0)
			go func() { _, _ = a.Write(tt.msg) }()
			got := make([]byte, len(tt.msg))
			_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(b, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, tt.msg) {
				t.Fatalf("got %d bytes that differ from the %d sent", len(got), len(tt.msg))
			}
			// And back.
			go func() { _, _ = b.Write([]byte("ok")) }()
			back := make([]byte, 2)
			_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(a, back); err != nil || string(back) != "ok" {
				t.Fatalf("reply = %q, %v; want ok", back, err)
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	a, b := pair(t, 0)
	if _, err := a.Write([]byte("request")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if _, err := a.Write([]byte("more")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("write after CloseWrite: err = %v, want ErrWriteClosed", err)
	}
	got, err := readAll(t, b)
	if err != nil || string(got) != "request" {
		t.Fatalf("peer read %q, %v; want request then EOF", got, err)
	}
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF = %d, %v; want 0, EOF", n, err)
	}
	// The half-closed peer still writes, and the half-closing side still reads.
	if _, err := b.Write([]byte("response")); err != nil {
		t.Fatalf("write back: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	got, err = readAll(t, a)
	if err != nil || string(got) != "response" {
		t.Fatalf("half-closed side read %q, %v; want response then EOF", got, err)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the peer closed")
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	a, b := pair(t, time.Millisecond)
	const writers, perWriter, size = 4, 64, 1000
	// Each side writes from several goroutines at once while its peer reads;
	// every Write is atomic, so the bytes total and their checksum are kept.
	send := func(c *Conn) {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := bytes.Repeat([]byte{byte('a' + w)}, size)
				for range perWriter {
					if _, err := c.Write(buf); err != nil {
						t.Errorf("write: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := c.CloseWrite(); err != nil {
			t.Errorf("close write: %v", err)
		}
	}
	results := make(chan []byte, 2)
	for _, c := range []*Conn{a, b} {
		go func() {
			got, err := readAll(t, c)
			if err != nil {
				t.Errorf("read: %v", err)
			}
			results <- got
		}()
		go send(c)
	}
	for range 2 {
		got := <-results
		if len(got) != writers*perWriter*size {
			t.Fatalf("read %d bytes, want %d", len(got), writers*perWriter*size)
		}
		counts := map[byte]int{}
		for i := 0; i < len(got); i += size {
			block := got[i : i+size]
			if !bytes.Equal(block, bytes.Repeat(block[:1], size)) {
				t.Fatalf("block at %d is interleaved", i)
			}
			counts[block[0]]++
		}
		for w := range writers {
			if counts[byte('a'+w)] != perWriter {
				t.Fatalf("writer %d: %d blocks, want %d", w, counts[byte('a'+w)], perWriter)
			}
		}
	}
}

func TestLargeTransferIsByteExact(t *testing.T) {
	a, b := pair(t, 0)
	data := make([]byte, 5<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Odd-sized writes exercise splitting and reassembly.
		for p := data; len(p) > 0; {
			n := min(len(p), 100_003)
			if _, err := a.Write(p[:n]); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			p = p[n:]
		}
		_ = a.CloseWrite()
	}()
	got, err := readAll(t, b)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != len(data) || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
}

func TestReadDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline func() time.Time
	}{
		{"deadline in the past fails at once and keeps the data", func() time.Time { return time.Unix(1, 0) }},
		{"deadline in the future interrupts a blocked read and keeps the data", func() time.Time { return time.Now().Add(50 * time.Millisecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t, 0)
			_ = b.SetReadDeadline(tt.deadline())
			start := time.Now()
			_, err := b.Read(make([]byte, 10))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read err = %v, want a timeout", err)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("deadline did not interrupt the read")
			}
			// As http.Server does after aborting its background read: clear
			// the deadline and read on; nothing may be lost.
			_ = b.SetReadDeadline(time.Time{})
			if _, err := a.Write([]byte("after")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5)
			if _, err := io.ReadFull(b, got); err != nil || string(got) != "after" {
				t.Fatalf("read after clearing deadline = %q, %v", got, err)
			}
		})
	}
}

func TestWriteDeadlineInThePastFails(t *testing.T) {
	a, b := pair(t, 0)
	_ = a.SetWriteDeadline(time.Unix(1, 0))
	if _, err := a.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write err = %v, want deadline exceeded", err)
	}
	_ = a.SetWriteDeadline(time.Time{})
	if _, err := a.Write([]byte("y")); err != nil {
		t.Fatalf("write after clearing deadline: %v", err)
	}
	got := make([]byte, 1)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "y" {
		t.Fatalf("peer read %q, %v; want y", got, err)
	}
}

func TestClose(t *testing.T) {
	a, b := pair(t, 0)
	readErr := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
	if got, err := readAll(t, b); err != nil || len(got) != 0 {
		t.Fatalf("peer read %q, %v; want EOF", got, err)
	}
}

func TestUnexpectedTextMessageFailsRead(t *testing.T) {
	l := NewListener(nil)
	hs := httptest.NewServer(l)
	defer hs.Close()
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 8)); err == nil || errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read err = %v, want a protocol error", err)
	}
}

func TestDialErrorKeepsResponse(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"unauthorized"}`))
	}))
	defer hs.Close()
	_, err := Dial(context.Background(), hs.URL, DialOptions{})
	var de *DialError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want *DialError", err)
	}
	if de.StatusCode != http.StatusUnauthorized || string(de.Body) != `{"message":"unauthorized"}` {
		t.Fatalf("DialError = %d %q", de.StatusCode, de.Body)
	}
}
