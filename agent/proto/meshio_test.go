package proto

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadLineLeavesTheRestUnread(t *testing.T) {
	r := strings.NewReader(`{"kind":"dial","addr":"127.0.0.1:80"}` + "\nHELLO")
	var o MeshOpen
	if err := ReadLine(r, &o); err != nil {
		t.Fatal(err)
	}
	if o.Kind != MeshDial || o.Addr != "127.0.0.1:80" {
		t.Fatalf("decoded %+v", o)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "HELLO" {
		t.Fatalf("rest = %q, want HELLO", rest)
	}
}

func TestReadLineRefuses(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"a line cut short", `{"kind":"dial"`},
		{"a line too long", strings.Repeat("x", MaxLine+1) + "\n"},
		{"a line that is no JSON", "nope\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o MeshOpen
			if err := ReadLine(strings.NewReader(tt.in), &o); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestOpenMeshReadsTheAnswer(t *testing.T) {
	tests := []struct {
		name    string
		answer  error
		refused bool
		wantErr string
	}{
		{"accepted stream carries bytes", nil, false, ""},
		{"refused dial matches ECONNREFUSED", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true, "connection refused"},
		{"other error is passed on", errors.New("no route"), false, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			done := make(chan error, 1)
			go func() {
				var o MeshOpen
				if err := ReadLine(b, &o); err != nil {
					done <- err
					return
				}
				if err := AnswerMesh(b, tt.answer); err != nil {
					done <- err
					return
				}
				if tt.answer == nil {
					_, err := b.Write([]byte("payload"))
					done <- err
					return
				}
				done <- nil
			}()
			err := OpenMesh(a, MeshOpen{Kind: MeshDial, Addr: "127.0.0.1:80"})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("OpenMesh: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("OpenMesh error %v, want %q", err, tt.wantErr)
			}
			if got := errors.Is(err, syscall.ECONNREFUSED); got != tt.refused {
				t.Fatalf("refused = %v, want %v (%v)", got, tt.refused, err)
			}
			if tt.answer == nil {
				buf := make([]byte, 7)
				if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "payload" {
					t.Fatalf("after the answer read %q, %v", buf, err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestSpliceHalfClosesBothWays joins two TCP connections: client ↔
// (splice) ↔ server. Whichever end closes its writes first, the other
// still sends and everything arrives.
func TestSpliceHalfClosesBothWays(t *testing.T) {
	for _, first := range []string{"client", "server"} {
		t.Run(first+" closes its writes first and still reads", func(t *testing.T) {
			client, in := tcpPair(t)
			out, server := tcpPair(t)
			spliced := make(chan struct{})
			go func() {
				Splice(in, out)
				close(spliced)
			}()
			closer, other := client, server
			if first == "server" {
				closer, other = server, client
			}
			if _, err := closer.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			closer.CloseWrite()
			got, err := io.ReadAll(other)
			if err != nil || string(got) != "request" {
				t.Fatalf("other end read %q, %v", got, err)
			}
			big := bytes.Repeat([]byte("0123456789"), 100_000)
			go func() {
				other.Write(big)
				other.CloseWrite()
			}()
			back, err := io.ReadAll(closer)
			if err != nil || !bytes.Equal(back, big) {
				t.Fatalf("half-closed end read %d bytes, %v; want %d", len(back), err, len(big))
			}
			select {
			case <-spliced:
			case <-time.After(10 * time.Second):
				t.Fatal("splice did not end after both ends closed their writes")
			}
		})
	}
}

func TestSpliceEndsWhenAWriteFails(t *testing.T) {
	client, in := tcpPair(t)
	out, server := tcpPair(t)
	spliced := make(chan struct{})
	go func() {
		Splice(in, out)
		close(spliced)
	}()
	// The client goes away for good: the server's output cannot be
	// delivered, and the server sees the end of its input.
	client.SetLinger(0)
	client.Close()
	go func() {
		for {
			if _, err := server.Write(make([]byte, 32<<10)); err != nil {
				return
			}
		}
	}()
	select {
	case <-spliced:
	case <-time.After(10 * time.Second):
		t.Fatal("splice still running after its client went away")
	}
}
