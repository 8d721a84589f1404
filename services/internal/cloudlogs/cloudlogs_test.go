package cloudlogs

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
)

// BootLogs finds the lines of one container among an instance's, through
// the Go client against gcpsim's Logging API.
func TestBootLogs(t *testing.T) {
	store := logging.NewStore(0)
	srv := grpc.NewServer()
	loggingpb.RegisterLoggingServiceV2Server(srv, logging.NewServer(store))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()

	created := time.Now().Add(-time.Second)
	add := func(text string) {
		store.Append(logging.InstanceEntry("p", "local", "fn", "fn-1", "inst", "stderr", text))
	}
	add(`{"severity":"INFO","message":"invocation","container":"default/c1","callback":"ws://127.0.0.1:1"}`)
	add(`{"severity":"INFO","message":"invocation","container":"default/c2"}`)
	add(`not json`)
	add(`{"severity":"ERROR","message":"dial hub","container":"default/c1","err":"connection refused"}`)

	r, err := New(context.Background(), Config{Project: "p", Endpoint: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.BootLogs(context.Background(), &engine.Container{ID: "c1", Namespace: "default", Created: created})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, le := range got {
		if le.Stream != engine.Stderr {
			t.Errorf("stream %d, want stderr", le.Stream)
		}
		lines = append(lines, string(le.Data))
	}
	want := "INFO invocation\nERROR dial hub: connection refused\n"
	if strings.Join(lines, "") != want {
		t.Fatalf("lines %q, want %q", lines, want)
	}
}
