package e2e

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialAttachWS opens the API's WebSocket attach of container id on the
// unix socket of host (unix://PATH).
func dialAttachWS(t *testing.T, ctx context.Context, host, id, query string) *websocket.Conn {
	t.Helper()
	sock := strings.TrimPrefix(host, "unix://")
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	ws, resp, err := websocket.Dial(ctx, "ws://docker/containers/"+id+"/attach/ws?"+query, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial attach/ws on %s: %v (status %d)", host, err, status)
	}
	return ws
}

// readUntil reads binary messages until their concatenation contains want.
func readUntil(t *testing.T, ctx context.Context, ws *websocket.Conn, want string) string {
	t.Helper()
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (got %q, want %q)", err, got.String(), want)
		}
		got.Write(b)
	}
	return got.String()
}

// GET /containers/{id}/attach/ws: stdin as messages, raw output as binary
// messages, directly, through the forwarder and on the Docker engine.
func TestAttachWebSocket(t *testing.T) {
	s := requireStack(t)
	hosts := s.hosts()
	if ref, ok := reference(t); ok {
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			echo := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "-i", "busybox", "cat"))
			defer mustDocker(t, h.host, "rm", "-f", echo)
			ws := dialAttachWS(t, ctx, h.host, echo, "stream=1&stdin=1&stdout=1&stderr=1")
			if err := ws.Write(ctx, websocket.MessageBinary, []byte("hello over ws\n")); err != nil {
				t.Fatal(err)
			}
			if got := readUntil(t, ctx, ws, "hello over ws\n"); got != "hello over ws\n" {
				t.Fatalf("echo = %q (output must be raw, not multiplexed)", got)
			}
			ws.Close(websocket.StatusNormalClosure, "")

			ticker := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "busybox", "sh", "-c", "sleep 1; echo tick; sleep 0.3; echo tock >&2; sleep 30"))
			defer mustDocker(t, h.host, "rm", "-f", ticker)
			ws = dialAttachWS(t, ctx, h.host, ticker, "stream=1&stdout=1&stderr=1")
			defer ws.Close(websocket.StatusNormalClosure, "")
			if got := readUntil(t, ctx, ws, "tock\n"); got != "tick\ntock\n" {
				t.Fatalf("output = %q", got)
			}

			// logs=1 without stream: the output so far, then the end.
			ws = dialAttachWS(t, ctx, h.host, ticker, "logs=1&stdout=1&stderr=1")
			defer ws.Close(websocket.StatusNormalClosure, "")
			var past strings.Builder
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					if websocket.CloseStatus(err) == -1 && ctx.Err() != nil {
						t.Fatalf("logs attach did not end: %v (got %q)", err, past.String())
					}
					t.Logf("logs attach ended: %v", err)
					break
				}
				past.Write(b)
			}
			if past.String() != "tick\ntock\n" {
				t.Fatalf("logs = %q", past.String())
			}

			// A TTY container's output is raw too (with the terminal's CRLF).
			tty := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "-t", "busybox", "sh", "-c", "sleep 1; echo tty; sleep 30"))
			defer mustDocker(t, h.host, "rm", "-f", tty)
			ws = dialAttachWS(t, ctx, h.host, tty, "stream=1&stdout=1&stderr=1")
			defer ws.Close(websocket.StatusNormalClosure, "")
			if got := readUntil(t, ctx, ws, "tty\r\n"); got != "tty\r\n" {
				t.Fatalf("tty output = %q", got)
			}
		})
	}
}
