package forward

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name     string
		upstream *url.URL
	}{
		{"no upstream is refused", nil},
		{"unix scheme is refused", &url.URL{Scheme: "unix", Path: "/x"}},
		{"missing host is refused", &url.URL{Scheme: "https"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Config{Upstream: tt.upstream}); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestTunnelURL(t *testing.T) {
	tests := []struct{ upstream, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/sockerless/v1/tunnel"},
		{"https://cp-abc.a.run.app/", "wss://cp-abc.a.run.app/sockerless/v1/tunnel"},
	}
	for _, tt := range tests {
		t.Run(tt.upstream+" maps to "+tt.want, func(t *testing.T) {
			u, _ := url.Parse(tt.upstream)
			if got := tunnelURL(u); got != tt.want {
				t.Fatalf("got %s", got)
			}
		})
	}
}

func TestNeedsTunnel(t *testing.T) {
	tests := []struct {
		name, method, path, upgrade string
		want                        bool
	}{
		{"docker attach with Upgrade tcp tunnels", "POST", "/v1.50/containers/abc/attach", "tcp", true},
		{"exec start with Upgrade tcp tunnels", "POST", "/v1.50/exec/abc/start", "tcp", true},
		{"attach without Upgrade tunnels (old clients)", "POST", "/v1.24/containers/abc/attach", "", true},
		{"exec start without version prefix tunnels", "POST", "/exec/abc/start", "", true},
		{"any non-websocket upgrade tunnels", "GET", "/v1.50/anything", "h2c", true},
		{"websocket attach is proxied", "GET", "/v1.50/containers/abc/attach/ws", "websocket", false},
		{"websocket upgrade is case-insensitive", "GET", "/v1.50/containers/abc/attach/ws", "WebSocket", false},
		{"logs are proxied", "GET", "/v1.50/containers/abc/logs", "", false},
		{"container start is proxied", "POST", "/v1.50/containers/abc/start", "", false},
		{"GET attach without Upgrade is proxied", "GET", "/containers/abc/attach", "", false},
		{"exec inspect is proxied", "GET", "/exec/abc/json", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(tt.method, "http://docker"+tt.path, nil)
			if tt.upgrade != "" {
				r.Header.Set("Connection", "Upgrade")
				r.Header.Set("Upgrade", tt.upgrade)
			}
			if got := needsTunnel(r); got != tt.want {
				t.Fatalf("needsTunnel = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProxyAddsTokenAndKeepsPath(t *testing.T) {
	cp := startControlPlane(t)
	tests := []struct {
		name       string
		token      string
		clientAuth string
		wantStatus int
	}{
		{"forwarder token replaces the client's", testToken, "Bearer wrong", http.StatusOK},
		{"wrong forwarder token gets the control plane's 401", "nope", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock, _ := startForwarder(t, cp.URL, tt.token)
			req, _ := http.NewRequest(http.MethodGet, "http://docker/v1.50/echo-request?all=1", nil)
			if tt.clientAuth != "" {
				req.Header.Set("Authorization", tt.clientAuth)
			}
			resp, err := unixClient(sock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				if msg := decodeMessage(t, resp.Body); !strings.Contains(msg, "unauthorized") {
					t.Fatalf("message %q", msg)
				}
				return
			}
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got["path"] != "/v1.50/echo-request" || got["query"] != "all=1" {
				t.Fatalf("upstream saw %v", got)
			}
		})
	}
}

func TestProxyStreams(t *testing.T) {
	cp := startControlPlane(t)
	sock, _ := startForwarder(t, cp.URL, testToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/v1.50/events", nil)
	resp, err := unixClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The upstream holds the second line back until we have the first, so
	// this only passes if the forwarder flushes as it goes.
	first, err := br.ReadString('\n')
	if err != nil || first != `{"line":1}`+"\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	close(cp.release)
	second, err := br.ReadString('\n')
	if err != nil || second != `{"line":2}`+"\n" {
		t.Fatalf("second line %q, %v", second, err)
	}
}

func TestWebSocketUpgradeIsProxied(t *testing.T) {
	cp := startControlPlane(t)
	sock, _ := startForwarder(t, cp.URL, testToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://docker/v1.50/containers/x/attach/ws", &websocket.DialOptions{HTTPClient: unixClient(sock)})
	if err != nil {
		t.Fatalf("dial through forwarder: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil || string(b) != "HI" {
		t.Fatalf("echo %q, %v", b, err)
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	sock, _ := startForwarder(t, deadURL(t), testToken)
	tests := []struct {
		name string
		raw  string
	}{
		{"proxied request gets 502", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"},
		{"tunneled request gets 502", "POST /v1.50/containers/x/attach HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, br := rawRequest(t, sock, tt.raw)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if msg := decodeMessage(t, resp.Body); !strings.HasPrefix(msg, "cannot reach control plane at http://127.0.0.1:") {
				t.Fatalf("message %q", msg)
			} else if strings.Contains(msg, testToken) {
				t.Fatalf("message leaks the token: %q", msg)
			}
		})
	}
}
