package dockersock

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/sockerless/sockerless/agent/proto"
)

// TestConnectionsRideTheMeshAsDockerStreams: a client of the socket at
// the bind's destination talks to whatever the MeshDocker stream reaches,
// half-close included; Close removes the socket.
func TestConnectionsRideTheMeshAsDockerStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "docker.sock")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // the control plane: echo until EOF, then say bye
		for {
			b, err := ln.Accept()
			if err != nil {
				return
			}
			data, _ := io.ReadAll(b)
			_, _ = b.Write(append(data, " bye"...))
			b.Close()
		}
	}()
	kinds := make(chan string, 4)
	dial := func(_ context.Context, open proto.MeshOpen) (net.Conn, error) {
		kinds <- open.Kind
		return net.Dial("tcp", ln.Addr().String())
	}
	s, err := Serve([]proto.Mount{{Type: proto.MountVolume, Destination: "/data"}, {Type: proto.MountDockerSocket, Destination: path}}, dial, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o666 {
		t.Fatalf("socket %v %v", st, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET /_ping"))
	_ = c.(*net.UnixConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if k := <-kinds; string(got) != "GET /_ping bye" || k != proto.MeshDocker {
		t.Fatalf("read %q over a %q stream", got, k)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}
