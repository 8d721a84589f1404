package controlplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/authn"
)

// testFailures answers failed authentications at once, quietly.
func testFailures() *authn.Failures {
	f := authn.NewFailures(slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.BaseDelay, f.MaxDelay = 0, 0
	return f
}

// recordingHandlers name which of the control plane's handlers a request
// reached.
func recordingHandlers(hit *string) handlers {
	rec := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*hit = name
			w.WriteHeader(http.StatusNoContent)
		})
	}
	return handlers{hub: rec("hub"), mesh: rec("mesh"), tunnel: rec("tunnel"), links: rec("links"),
		gc: rec("gc"), storeStats: rec("store-stats"), api: rec("api")}
}

// serveGuarded serves the control plane's TCP handler (the real route
// table behind requireToken) on a loopback port.
func serveGuarded(t *testing.T, hit *string, fails *authn.Failures) (*http.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(requireToken(auth.New(auth.Config{AdminToken: "0123456789abcdef"}), fails, routes(recordingHandlers(hit))), context.Background(), 0)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// rawRequest sends target as is (no client-side cleaning) and returns
// the status.
func rawRequest(t *testing.T, addr, method, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNoPathReachesAnotherHandlerWithoutToken: the token check decides on
// the path the router sees. /agent%2Fv1%2Fconnect used to pass the check
// (its decoded path is the agent's) and reach the Docker API.
func TestNoPathReachesAnotherHandlerWithoutToken(t *testing.T) {
	var hit string
	_, addr := serveGuarded(t, &hit, testFailures())
	tricky := []string{
		"/agent%2Fv1%2Fconnect",
		"/agent%2fv1%2fconnect",
		"/agent/v1%2Fconnect",
		"/%61gent/v1/connect",
		"//agent/v1/connect",
		"/agent//v1/connect",
		"/agent/v1/connect/",
		"/agent/v1/./connect",
		"/agent/v1/connect/..",
		"/agent/v1/connect/../../../containers/json",
		"/agent/v1/connect/%2E%2E/%2E%2E/%2E%2E/containers/json",
		"/x/../agent/v1/connect",
		"/agent/v1/mesh/../connect",
		"/v1.41/agent/v1/connect",
		"/sockerless/v1/gc",
		"/sockerless%2Fv1%2Fgc",
		"/containers/json",
		"/v1.41/containers/json",
		"http://x/agent%2Fv1%2Fconnect",
	}
	for _, target := range tricky {
		t.Run(target, func(t *testing.T) {
			hit = ""
			code := rawRequest(t, addr, "GET", target)
			if hit != "" && hit != "hub" && hit != "mesh" {
				t.Fatalf("%s reached the %s handler without a token (status %d)", target, hit, code)
			}
			if code != http.StatusUnauthorized && hit == "" {
				t.Fatalf("%s: status %d, want 401", target, code)
			}
		})
	}
	for _, p := range []string{proto.ConnectPath, proto.MeshPath} {
		hit = ""
		if code := rawRequest(t, addr, "GET", p); code != http.StatusNoContent || hit == "" {
			t.Fatalf("agent path %s: status %d, handler %q", p, code, hit)
		}
	}
}

// TestFailedAuthClosesTheConnection: a client that failed holds no file
// descriptor (each used to keep its keep-alive connection for good).
func TestFailedAuthClosesTheConnection(t *testing.T) {
	var hit string
	_, addr := serveGuarded(t, &hit, testFailures())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /containers/json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after a failed authentication: %v", err)
	}
}

// TestSilentConnectionsAreClosed: a connection that never sends a request
// head is closed after the read-header timeout; an idle keep-alive one
// after the idle timeout.
func TestSilentConnectionsAreClosed(t *testing.T) {
	var hit string
	srv, addr := serveGuarded(t, &hit, testFailures())
	if srv.ReadHeaderTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("server without timeouts: header %v idle %v", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	srv.ReadHeaderTimeout, srv.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", proto.ConnectPath)
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.Close {
		t.Fatalf("keep-alive request: %v close=%v", err, resp != nil && resp.Close)
	}
	resp.Body.Close()
	for name, r := range map[string]io.Reader{"silent": silent, "idle keep-alive": br} {
		silent.SetReadDeadline(time.Now().Add(10 * time.Second))
		idle.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("%s connection not closed by the server: %v", name, err)
		}
	}
}

// TestMeasureIdleUnauthenticatedConnections is the measurement behind the
// README's numbers: N connections that each failed authentication and
// stay open on the client side; how many descriptors the server still
// holds. SOCKERLESS_MEASURE_CONNS=3000 runs it.
func TestMeasureIdleUnauthenticatedConnections(t *testing.T) {
	n := 0
	fmt.Sscan(os.Getenv("SOCKERLESS_MEASURE_CONNS"), &n)
	if n == 0 {
		t.Skip("set SOCKERLESS_MEASURE_CONNS=N to measure")
	}
	var hit string
	_, addr := serveGuarded(t, &hit, testFailures())
	before := openFDs(t)
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /containers/json HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	time.Sleep(time.Second)
	// Client and server share this process: the server's part is what
	// exceeds the n client descriptors.
	t.Logf("%d idle connections after failed authentication: server holds %d descriptors", n, openFDs(t)-before-n)
	for _, c := range conns {
		c.Close()
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
