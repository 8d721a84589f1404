package forward

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sockerless/sockerless/services/internal/wsconn"
)

const testToken = "s3cret-token"

// fakeControlPlane is an upstream shaped like the control plane: a token
// check in front of everything, the tunnel Listener at TunnelPath, and an
// http.Server with the same handler serving the tunnels.
type fakeControlPlane struct {
	URL     *url.URL
	release chan struct{} // lets the streaming endpoint write its second line
}

func startControlPlane(t *testing.T) *fakeControlPlane {
	t.Helper()
	cp := &fakeControlPlane{release: make(chan struct{})}

	api := http.NewServeMux()
	api.HandleFunc("GET /v1.50/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"line":1}`+"\n")
		w.(http.Flusher).Flush()
		select {
		case <-cp.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, `{"line":2}`+"\n")
	})
	api.HandleFunc("GET /v1.50/echo-request", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "query": r.URL.RawQuery})
	})
	for _, p := range []string{"/v1.50/containers/x/attach", "/containers/x/attach", "/v1.44/exec/e1/start"} {
		api.HandleFunc("POST "+p, hijackEcho)
	}
	api.HandleFunc("POST /v1.50/containers/missing/attach", func(w http.ResponseWriter, r *http.Request) {
		dockerError(w, http.StatusNotFound, "No such container: missing")
	})
	api.HandleFunc("GET /v1.50/containers/x/attach/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		typ, b, err := ws.Read(r.Context())
		if err != nil {
			return
		}
		_ = ws.Write(r.Context(), typ, []byte(strings.ToUpper(string(b))))
		_ = ws.Close(websocket.StatusNormalClosure, "")
	})

	tunnels := wsconn.NewListener(nil)
	root := http.NewServeMux()
	root.Handle("GET "+TunnelPath, tunnels)
	root.Handle("/", api)
	handler := requireToken(root)

	hs := httptest.NewServer(handler)
	inner := &http.Server{Handler: handler}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = inner.Serve(tunnels)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = inner.Shutdown(ctx)
		<-served
		hs.Close()
	})
	cp.URL, _ = url.Parse(hs.URL)
	return cp
}

// requireToken refuses requests without the test token, as the control plane does.
func requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			dockerError(w, http.StatusUnauthorized, "unauthorized: missing or wrong token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func dockerError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// hijackEcho answers like docker's attach: it reads the request body, answers
// 101 UPGRADED, reports the body, echoes input upper-cased until EOF, then
// writes "done" and closes.
func hijackEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		dockerError(w, http.StatusBadRequest, err.Error())
		return
	}
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		dockerError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	if len(body) > 0 {
		_, _ = io.WriteString(conn, "body="+string(body)+"\n")
	}
	for {
		line, err := brw.ReadString('\n')
		if line != "" {
			if _, werr := io.WriteString(conn, strings.ToUpper(line)); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	_, _ = io.WriteString(conn, "done")
}

// startForwarder serves a Forwarder for upstream on a fresh unix socket and
// returns the socket path.
func startForwarder(t *testing.T, upstream *url.URL, token string) (string, *Forwarder) {
	t.Helper()
	f, err := New(Config{Upstream: upstream, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "fwd") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = f.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return sock, f
}

// unixClient is an HTTP client that talks to the socket.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// rawRequest dials the socket, writes raw and returns the connection and a
// reader positioned at the response.
func rawRequest(t *testing.T, sock, raw string) (*net.UnixConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c.(*net.UnixConn), bufio.NewReader(c)
}

// deadURL returns a URL nobody listens on.
func deadURL(t *testing.T) *url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return &url.URL{Scheme: "http", Host: addr}
}

func decodeMessage(t *testing.T, r io.Reader) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return m.Message
}
