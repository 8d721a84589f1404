package wsconn

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// tunnelServer mounts a Listener at /tunnel, serves it with an http.Server
// running handler (as the control plane does) and returns the tunnel URL.
func tunnelServer(t *testing.T, handler http.Handler) (string, *Listener) {
	t.Helper()
	l := NewListener(Addr("test-tunnel"))
	mux := http.NewServeMux()
	mux.Handle("GET /tunnel", l)
	hs := httptest.NewServer(mux)
	srv := &http.Server{Handler: handler}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		hs.Close()
	})
	return hs.URL + "/tunnel", l
}

// hijackEcho answers like docker's attach: 101 UPGRADED, then echoes each
// line upper-cased until EOF, then writes "done" and closes.
func hijackEcho(w http.ResponseWriter, r *http.Request) {
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	for {
		line, err := brw.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(conn, strings.ToUpper(line))
		}
		if err != nil {
			break
		}
	}
	_, _ = io.WriteString(conn, "done")
}

func TestListenerServesHTTPThroughTunnels(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /attach", hijackEcho)
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hi from "+r.RemoteAddr)
	})
	url, _ := tunnelServer(t, mux)

	t.Run("plain request gets its response", func(t *testing.T) {
		c, err := Dial(context.Background(), url, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, _ := http.NewRequest(http.MethodGet, "http://docker/hello", nil)
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hi from 127.0.0.1:") {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})

	t.Run("hijacking handler streams both ways with half-close", func(t *testing.T) {
		c, err := Dial(context.Background(), url, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, _ := http.NewRequest(http.MethodPost, "http://docker/attach", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "tcp")
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		if _, err := io.WriteString(c, "one\ntwo\n"); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(rest) != "ONE\nTWO\ndone" {
			t.Fatalf("got %q, want echo then done", rest)
		}
	})
}

func TestListenerClose(t *testing.T) {
	l := NewListener(nil)
	hs := httptest.NewServer(l)
	defer hs.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("accept returns net.ErrClosed", func(t *testing.T) {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept err = %v", err)
		}
	})
	t.Run("new upgrades are refused with 503", func(t *testing.T) {
		_, err := Dial(context.Background(), hs.URL, DialOptions{})
		var de *DialError
		if !errors.As(err, &de) || de.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("dial err = %v, want 503", err)
		}
	})
}

func TestKeepAlivesAreInvisibleToRead(t *testing.T) {
	a, b := pair(t, time.Millisecond)
	time.Sleep(30 * time.Millisecond) // several keepalives from a
	_ = b.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if n, err := b.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle read = %d, %v; want a timeout", n, err)
	}
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "x" {
		t.Fatalf("read %q, %v", got, err)
	}
}
