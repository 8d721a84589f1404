package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sockerless/sockerless/services/internal/sockq"
	"github.com/sockerless/sockerless/services/internal/wsconn"
)

// stream is one bridged tunnel: the hijacked client connection and the
// WebSocket to the control plane.
type stream struct {
	client net.Conn
	tunnel *wsconn.Conn
}

func (s *stream) close() {
	_ = s.client.Close()
	_ = s.tunnel.Close()
}

// serveTunnel carries a request that docker hijacks through a WebSocket
// tunnel: it writes the request into the tunnel, hijacks the client
// connection and bridges bytes both ways until both directions end. The
// upstream's response, 101 or an error, reaches the client unparsed.
func (f *Forwarder) serveTunnel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.shutdown {
		f.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "forwarder is shutting down")
		return
	}
	f.active.Add(1)
	f.mu.Unlock()
	defer f.active.Done()

	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusInternalServerError, "this connection cannot carry a stream")
		return
	}
	tun, err := f.dialTunnel(r.Context())
	if err != nil {
		f.tunnelDialFailed(w, r, err)
		return
	}

	// The request goes into the tunnel as the client sent it, with the
	// forwarder's token and without Expect (the local server already
	// answered it).
	f.authorize(r.Header)
	r.Header.Del("Expect")
	if err := r.Write(tun); err != nil {
		_ = tun.Close()
		f.log.Warn("tunnel write failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, f.unreachable(err))
		return
	}
	client, brw, err := hj.Hijack()
	if err != nil {
		_ = tun.Close()
		f.log.Warn("hijack failed", "path", r.URL.Path, "err", err)
		return
	}
	// Bytes the client sent after the request (e.g. stdin) may already sit
	// in the server's buffer.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := tun.Write(b); err != nil {
			_ = client.Close()
			_ = tun.Close()
			f.log.Warn("tunnel write failed", "path", r.URL.Path, "err", err)
			return
		}
	}

	s := &stream{client: client, tunnel: tun}
	if !f.track(s) {
		s.close()
		return
	}
	defer f.untrack(s)
	start := time.Now()
	f.log.Debug("stream open", "method", r.Method, "path", r.URL.Path)
	err = bridge(s)
	f.log.Debug("stream closed", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start), "err", err)
}

// dialTunnel opens a tunnel to the control plane; a forced Shutdown aborts it.
func (f *Forwarder) dialTunnel(ctx context.Context) (*wsconn.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(f.stop, cancel)
	defer stop()
	h := http.Header{}
	f.authorize(h)
	return wsconn.Dial(ctx, f.tunnelURL, wsconn.DialOptions{Header: h, HTTPClient: f.client})
}

// tunnelDialFailed answers a request whose tunnel could not be opened. The
// control plane's own refusal (e.g. 401) is relayed; a missing tunnel
// endpoint or an unreachable control plane is a 502.
func (f *Forwarder) tunnelDialFailed(w http.ResponseWriter, r *http.Request, err error) {
	f.log.Warn("tunnel dial failed", "method", r.Method, "path", r.URL.Path, "err", err)
	var de *wsconn.DialError
	if !errors.As(err, &de) {
		writeError(w, http.StatusBadGateway, f.unreachable(err))
		return
	}
	switch de.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUpgradeRequired:
		writeError(w, http.StatusBadGateway, fmt.Sprintf("control plane at %s has no stream tunnel endpoint (%s answered %d)",
			f.upstream.Redacted(), TunnelPath, de.StatusCode))
		return
	}
	if len(de.Body) == 0 {
		writeError(w, de.StatusCode, fmt.Sprintf("control plane refused the stream tunnel: %d %s", de.StatusCode, http.StatusText(de.StatusCode)))
		return
	}
	if ct := de.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(de.StatusCode)
	_, _ = w.Write(de.Body)
}

// track registers s for a forced Shutdown; false if that already happened.
func (f *Forwarder) track(s *stream) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop.Err() != nil {
		return false
	}
	f.streams[s] = struct{}{}
	return true
}

func (f *Forwarder) untrack(s *stream) {
	f.mu.Lock()
	delete(f.streams, s)
	f.mu.Unlock()
}

// errNoHalfClose: the client connection cannot close only its write side.
var errNoHalfClose = errors.New("client connection does not support half-close")

// bridge copies bytes both ways. The client's EOF becomes the tunnel's
// CloseWrite and the tunnel's EOF the client's CloseWrite; copying goes on
// the other way until that ends too, or until the control plane has closed
// the tunnel entirely. Then both connections are closed. It returns the first
// error that cut the stream short.
func bridge(s *stream) error {
	type result struct {
		readErr, writeErr error
	}
	up := make(chan result, 1)   // client → tunnel
	down := make(chan result, 1) // tunnel → client
	go func() {
		rerr, werr := pipe(s.tunnel, s.client)
		if rerr == nil && werr == nil {
			werr = s.tunnel.CloseWrite()
		}
		up <- result{rerr, werr}
	}()
	go func() {
		rerr, werr := relayHead(s.client, s.tunnel)
		if rerr == nil && werr == nil {
			rerr, werr = pipe(s.client, s.tunnel)
		}
		if rerr == nil && werr == nil {
			werr = closeWrite(s.client)
		}
		down <- result{rerr, werr}
	}()

	var failure error
	upDone, downDone, tunnelGone := false, false, false
	tunnelDone := s.tunnel.Done()
	for failure == nil && !(upDone && downDone) && !(downDone && tunnelGone) {
		select {
		case res := <-up:
			upDone = true
			// A broken client ends everything; a tunnel that no longer takes
			// writes still lets its remaining output through.
			if res.readErr != nil {
				failure = fmt.Errorf("read client: %w", res.readErr)
			}
		case res := <-down:
			downDone = true
			switch {
			case res.readErr != nil:
				failure = fmt.Errorf("read tunnel: %w", res.readErr)
			case res.writeErr != nil:
				failure = fmt.Errorf("write client: %w", res.writeErr)
			}
		case <-tunnelDone:
			tunnelDone = nil
			tunnelGone = true
		}
	}
	s.close()
	if !upDone {
		<-up
	}
	if !downDone {
		<-down
	}
	return failure
}

// maxHead bounds the answer head relayHead looks for.
const maxHead = 64 << 10

// headReadWait bounds the wait for the client to read the answer's head.
const headReadWait = 2 * time.Second

// relayHead copies the upstream's answer head (up to its blank line) to
// the client and waits until the client has read it before anything
// else follows (see package sockq: a client that parses the head
// through a buffer and then reads its raw socket would lose stream bytes
// that came with the head). An answer whose head is not found in its
// first maxHead bytes is copied on as it is.
func relayHead(dst net.Conn, src io.Reader) (readErr, writeErr error) {
	var head []byte
	buf := make([]byte, 32<<10)
	for len(head) < maxHead {
		n, err := src.Read(buf)
		head = append(head, buf[:n]...)
		if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
			if _, werr := dst.Write(head[:i+4]); werr != nil {
				return nil, werr
			}
			sockq.AwaitRead(dst, headReadWait)
			if _, werr := dst.Write(head[i+4:]); werr != nil {
				return nil, werr
			}
			if err == io.EOF {
				return nil, nil // the rest: pipe reads EOF again
			}
			if err != nil {
				return err, nil
			}
			return nil, nil
		}
		if err != nil {
			if _, werr := dst.Write(head); werr != nil {
				return nil, werr
			}
			if err == io.EOF {
				return nil, nil
			}
			return err, nil
		}
	}
	_, werr := dst.Write(head)
	return nil, werr
}

// pipe copies src to dst until src's EOF, telling a read failure from a write
// failure.
func pipe(dst io.Writer, src io.Reader) (readErr, writeErr error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}
