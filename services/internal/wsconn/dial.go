package wsconn

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
)

// DialOptions configure Dial.
type DialOptions struct {
	// Header is sent with the WebSocket handshake (e.g. Authorization).
	Header http.Header
	// HTTPClient performs the handshake; nil means http.DefaultClient. Its
	// transport must speak HTTP/1.1 to the server (http.Transport does unless
	// HTTP/2 was forced).
	HTTPClient *http.Client
	// KeepAlive is passed to New.
	KeepAlive time.Duration
}

// DialError is a handshake the server answered with something other than a
// WebSocket upgrade (e.g. 401 or 404). It keeps the start of the response so
// that callers can relay it.
type DialError struct {
	StatusCode int
	Header     http.Header
	Body       []byte // at most the first 1024 bytes
	Err        error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("tunnel handshake answered %d: %v", e.StatusCode, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Dial opens a WebSocket to rawURL (ws, wss, http or https) and returns it as
// a Conn. ctx bounds the handshake only. A server that answers the handshake
// with an HTTP response other than 101 yields a *DialError.
func Dial(ctx context.Context, rawURL string, opts DialOptions) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsconn: dial: %w", err)
	}
	ws, resp, err := websocket.Dial(ctx, rawURL, &websocket.DialOptions{
		HTTPClient:      opts.HTTPClient,
		HTTPHeader:      opts.Header,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			de := &DialError{StatusCode: resp.StatusCode, Header: resp.Header, Err: err}
			if resp.Body != nil {
				de.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
			}
			return nil, fmt.Errorf("wsconn: dial %s: %w", u.Redacted(), de)
		}
		return nil, fmt.Errorf("wsconn: dial %s: %w", u.Redacted(), err)
	}
	return New(ws, Options{
		LocalAddr:  Addr("tunnel-client"),
		RemoteAddr: Addr(u.Host),
		KeepAlive:  opts.KeepAlive,
	}), nil
}
