package forward

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const attachUpgrade = "Connection: Upgrade\r\nUpgrade: tcp\r\n"

func TestHijackedStreamThroughTunnel(t *testing.T) {
	cp := startControlPlane(t)
	sock, _ := startForwarder(t, cp.URL, testToken)
	tests := []struct {
		name    string
		request string // up to and including the blank line
		early   string // stream bytes sent in the same write as the request
		want    string
	}{
		{
			name:    "docker attach upgrade echoes and survives half-close",
			request: "POST /v1.50/containers/x/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: api.moby.localhost\r\nAuthorization: Bearer client-token\r\n" + attachUpgrade + "Content-Length: 0\r\n\r\n",
			early:   "early\n",
			want:    "EARLY\nLATE\ndone",
		},
		{
			name:    "attach without Upgrade (old client) is tunneled too",
			request: "POST /containers/x/attach?stream=1 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
			want:    "LATE\ndone",
		},
		{
			name:    "exec start body reaches the upstream intact",
			request: "POST /v1.44/exec/e1/start HTTP/1.1\r\nHost: docker\r\n" + attachUpgrade + "Content-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"Detach\":false,\"Tty\":true}",
			want:    "body={\"Detach\":false,\"Tty\":true}\nLATE\ndone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := rawRequest(t, sock, tt.request+tt.early)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Type") != "application/vnd.docker.raw-stream" {
				t.Fatalf("got %d %s, want 101 raw-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if _, err := io.WriteString(c, "late\n"); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("read stream: %v", err)
			}
			if string(rest) != tt.want {
				t.Fatalf("stream %q, want %q", rest, tt.want)
			}
		})
	}
}

func TestTunnelRelaysUpstreamErrors(t *testing.T) {
	cp := startControlPlane(t)
	tests := []struct {
		name       string
		token      string
		path       string
		wantStatus int
		wantMsg    string
	}{
		{"404 from the handler reaches the client as is", testToken, "/v1.50/containers/missing/attach", http.StatusNotFound, "No such container: missing"},
		{"wrong token is refused at the tunnel with 401", "wrong", "/v1.50/containers/x/attach", http.StatusUnauthorized, "unauthorized: missing or wrong token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock, _ := startForwarder(t, cp.URL, tt.token)
			_, br := rawRequest(t, sock, "POST "+tt.path+" HTTP/1.1\r\nHost: docker\r\n"+attachUpgrade+"Content-Length: 0\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if msg := decodeMessage(t, resp.Body); msg != tt.wantMsg {
				t.Fatalf("message %q, want %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestTunnelToUpstreamWithoutTunnelEndpointIs502(t *testing.T) {
	// An upstream that is not a control plane: every path is 404.
	plain := startPlain404(t)
	sock, _ := startForwarder(t, plain, testToken)
	_, br := rawRequest(t, sock, "POST /v1.50/containers/x/attach HTTP/1.1\r\nHost: docker\r\n"+attachUpgrade+"Content-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if msg := decodeMessage(t, resp.Body); !strings.Contains(msg, "no stream tunnel endpoint") {
		t.Fatalf("message %q", msg)
	}
}

func TestShutdown(t *testing.T) {
	cp := startControlPlane(t)
	t.Run("without streams it returns at once", func(t *testing.T) {
		_, f := startForwarder(t, cp.URL, testToken)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	})
	t.Run("an open stream is closed when the grace period ends", func(t *testing.T) {
		sock, f := startForwarder(t, cp.URL, testToken)
		_, br := rawRequest(t, sock, "POST /v1.50/containers/x/attach HTTP/1.1\r\nHost: docker\r\n"+attachUpgrade+"Content-Length: 0\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := f.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown err = %v, want deadline exceeded", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("shutdown did not close the stream promptly")
		}
		if _, err := io.ReadAll(br); err != nil {
			t.Fatalf("client read after shutdown: %v", err)
		}
	})
}

func startPlain404(t *testing.T) *url.URL {
	t.Helper()
	hs := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(hs.Close)
	u, _ := url.Parse(hs.URL)
	return u
}
