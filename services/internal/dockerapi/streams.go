package dockerapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/resume"
	"github.com/sockerless/sockerless/services/internal/sockq"
)

// Stream content types (API ≥ 1.42 tells them apart).
const (
	rawStream         = "application/vnd.docker.raw-stream"
	multiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// timestampFormat is docker's fixed-width RFC 3339 with nanoseconds.
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// frameWriter writes output the way docker does: raw for TTY containers,
// else each chunk behind an 8-byte header naming its stream.
type frameWriter struct {
	w          io.Writer
	flush      func()
	raw        bool
	timestamps bool
	details    string // docker logs --details: the log attributes, then a space
	hdr        [8]byte
}

func (f *frameWriter) write(le engine.LogEntry) error {
	data := le.Data
	if f.details != "" {
		data = append([]byte(f.details), data...)
	}
	if f.timestamps {
		data = append([]byte(le.Time.UTC().Format(timestampFormat)+" "), data...)
	}
	if !f.raw {
		f.hdr = [8]byte{byte(le.Stream)}
		binary.BigEndian.PutUint32(f.hdr[4:], uint32(len(data)))
		if _, err := f.w.Write(f.hdr[:]); err != nil {
			return err
		}
	}
	if _, err := f.w.Write(data); err != nil {
		return err
	}
	if f.flush != nil {
		f.flush()
	}
	return nil
}

// getContainersLogs: GET /containers/{id}/logs (docker logs).
func (s *Server) getContainersLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	o := engine.LogOptions{Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), Follow: boolParam(r, "follow"), Tail: -1}
	if !o.Stdout && !o.Stderr {
		return engine.Errorf(engine.KindInvalid, "Bad parameters: you must choose at least one stream")
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return engine.Errorf(engine.KindInvalid, "invalid value for tail: %s", t)
		}
		o.Tail = n
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := q.Get(p.name); v != "" && v != "0" {
			t, err := engine.ParseTime(v)
			if err != nil {
				return err
			}
			*p.t = t
		}
	}
	c, err := s.e.Container(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	// A resumable stream (package resume): pinned to the log's end now,
	// or to the anchor of the stream this request resumes.
	o.Anchored, o.Anchor = true, c.LogSeq
	if a, ok := resume.Parse(r.Header.Get(resume.HeaderAnchor)); ok {
		o.Anchor = a
	}
	w.Header().Set(resume.HeaderAnchor, strconv.FormatUint(o.Anchor, 10))
	var out io.Writer = w
	if skip, ok := resume.Parse(r.Header.Get(resume.HeaderSkip)); ok {
		out = &skipWriter{w: w, skip: skip}
	}
	fw := &frameWriter{w: out, raw: c.Config.Tty, timestamps: boolParam(r, "timestamps")}
	if boolParam(r, "details") {
		fw.details = engine.LogDetails(c)
	}
	if f, ok := w.(http.Flusher); ok {
		fw.flush = f.Flush
	}
	ct := multiplexedStream
	if fw.raw {
		ct = rawStream
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	if fw.flush != nil {
		fw.flush()
	}
	if err := s.e.Logs(r.Context(), s.ns(r), c.ID, o, fw.write); err != nil {
		s.log.Debug("logs ended", "container", c.ID, "err", err)
	}
	if o.Follow && r.Context().Err() != nil {
		// Cut (the control plane shuts down, or the client left): end
		// without the final chunk, so no one takes it for a finished stream.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// skipWriter drops the first skip bytes written to it: the part of a
// resumed stream the client already has.
type skipWriter struct {
	w    io.Writer
	skip uint64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip >= uint64(n) {
		s.skip -= uint64(n)
		return n, nil
	}
	p = p[s.skip:]
	s.skip = 0
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// postContainersAttach: POST /containers/{id}/attach (hijacked).
func (s *Server) postContainersAttach(w http.ResponseWriter, r *http.Request) error {
	p, o, err := s.attachRequest(r)
	if err != nil {
		return err
	}
	tty := p.Container().Config.Tty
	conn, buf, err := hijack(w, r, tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	s.attach(r, conn, buf.Reader, p, o, tty)
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return nil
}

// getContainersAttachWS: GET /containers/{id}/attach/ws, the API's
// WebSocket attach: output as binary messages, raw (never multiplexed, as
// docker sends it), input from the client's messages.
func (s *Server) getContainersAttachWS(w http.ResponseWriter, r *http.Request) error {
	p, o, err := s.attachRequest(r)
	if err != nil {
		return err
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil // Accept has answered
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	defer conn.Close() // a normal closure
	s.attach(r, conn, conn, p, o, true)
	return nil
}

// attachRequest reads an attach request's container and options.
func (s *Server) attachRequest(r *http.Request) (*engine.AttachPoint, engine.AttachOptions, error) {
	p, err := s.e.AttachPoint(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return nil, engine.AttachOptions{}, err
	}
	o := engine.AttachOptions{Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), Logs: boolParam(r, "logs"), DetachKeys: r.URL.Query().Get("detachKeys")}
	if _, err := engine.ParseDetachKeys(o.DetachKeys); err != nil {
		return nil, o, err
	}
	return p, o, nil
}

// attach serves an attach on conn, whose input comes from in: past output
// with logs, live output with stream, the client's input as stdin when it
// asked for it and the container keeps stdin open.
func (s *Server) attach(r *http.Request, conn net.Conn, in io.Reader, p *engine.AttachPoint, o engine.AttachOptions, raw bool) {
	c := p.Container()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	if boolParam(r, "stdin") && c.Config.OpenStdin {
		o.Stdin = in
	} else {
		go drainInput(in, cancel)
	}
	fw := &frameWriter{w: conn, raw: raw}
	var err error
	if !boolParam(r, "stream") {
		if o.Logs {
			err = s.e.Logs(ctx, s.ns(r), c.ID, engine.LogOptions{Stdout: o.Stdout, Stderr: o.Stderr, Tail: -1}, fw.write)
		}
	} else {
		err = s.e.AttachAt(ctx, p, o, fw.write)
	}
	if err != nil {
		s.log.Debug("attach ended", "container", c.ID, "err", err)
	}
}

// hijack takes over the connection and sends docker's upgrade answer.
func hijack(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, engine.Errorf(engine.KindInternal, "connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	ct := multiplexedStream
	if tty {
		ct = rawStream
	}
	resp := "HTTP/1.1 200 OK\r\nContent-Type: " + ct + "\r\n\r\n"
	if r.Header.Get("Upgrade") != "" {
		resp = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ct + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte(resp)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	// A client that reads the stream from its raw socket after parsing the
	// head through a buffer (docker's Python SDK) loses stream bytes that
	// arrive with the head: let it read the head first.
	sockq.AwaitRead(conn, headReadWait)
	return conn, buf, nil
}

// headReadWait bounds the wait for a client to read a hijacked answer's
// head before its stream begins.
const headReadWait = 2 * time.Second

// drainInput reads and discards input of a client that attached no stdin,
// and cancels when the connection fails. A half-close (EOF) is not an end:
// output keeps flowing.
func drainInput(in io.Reader, cancel context.CancelFunc) {
	_, err := io.Copy(io.Discard, in)
	if err != nil {
		cancel()
	}
}
