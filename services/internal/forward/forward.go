package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// TunnelPath is where the control plane accepts stream tunnels.
const TunnelPath = "/sockerless/v1/tunnel"

const (
	dialTimeout      = 10 * time.Second // TCP connect to the control plane
	handshakeTimeout = 30 * time.Second // TLS + WebSocket handshake of a tunnel
)

// Config configures a Forwarder.
type Config struct {
	// Upstream is the control plane's base URL (http or https).
	Upstream *url.URL
	// Token is sent as `Authorization: Bearer <Token>` on every request,
	// replacing the client's; empty leaves the client's header alone.
	Token string
	// Tokens, if set, gives the bearer token of each request instead of
	// Token: a Google ID token source (forwarder --google), refreshed as
	// it expires. A request it fails for goes without one (and the
	// control plane answers 401).
	Tokens func() (string, error)
	// Client is this forwarder's client ID, sent on every request so the
	// control plane knows whose machine binds the published ports of the
	// containers it creates (see package clientlink); empty sends none.
	Client string
	// Socket is the path of this forwarder's unix socket, sent on every
	// request: a bind of it into a container (-v SOCKET:/var/run/docker.sock)
	// binds the Docker API, as one of /var/run/docker.sock does.
	Socket string
	// Binds, if set, is told of every container create's body before it
	// goes upstream: the host paths the user binds (package bindguard),
	// the only ones the link serves to the control plane.
	Binds interface{ RecordCreate(body []byte) error }
	// Logger receives diagnostics; nil discards them. The token is never logged.
	Logger *slog.Logger
}

// Forwarder is an http.Handler that forwards Docker API requests to the
// control plane. Create it with New; stop it with Shutdown together with the
// http.Server that serves it.
type Forwarder struct {
	upstream  *url.URL
	tunnelURL string
	token     string
	tokens    func() (string, error)
	clientID  string
	socket    string
	binds     interface{ RecordCreate(body []byte) error }
	log       *slog.Logger
	transport *http.Transport
	client    *http.Client // dials tunnels
	proxy     *httputil.ReverseProxy

	mu       sync.Mutex
	streams  map[*stream]struct{} // bridged tunnels, closed by a forced Shutdown
	active   sync.WaitGroup       // one per tunnel request being served
	shutdown bool                 // Shutdown was called: refuse new tunnels

	// stop is cancelled when Shutdown gives up waiting; it aborts tunnel
	// handshakes still in progress.
	stop   context.Context
	cancel context.CancelFunc
}

// New checks cfg and returns a Forwarder.
func New(cfg Config) (*Forwarder, error) {
	u := cfg.Upstream
	if u == nil {
		return nil, errors.New("forward: no upstream URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("forward: upstream %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("forward: upstream %s: no host", u.Redacted())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		upstream:  u,
		tunnelURL: tunnelURL(u),
		token:     cfg.Token,
		tokens:    cfg.Tokens,
		clientID:  cfg.Client,
		socket:    cfg.Socket,
		binds:     cfg.Binds,
		log:       log,
		transport: newTransport(),
		streams:   map[*stream]struct{}{},
	}
	f.stop, f.cancel = context.WithCancel(context.Background())
	f.client = &http.Client{Transport: f.transport}
	f.proxy = &httputil.ReverseProxy{
		Rewrite:       f.rewrite,
		Transport:     f.transport,
		FlushInterval: -1, // logs -f, events and pull progress must stream
		ErrorHandler:  f.proxyError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return f, nil
}

// newTransport returns an HTTP/1.1 transport with timeouts on connecting and
// none on responses: streams last as long as the container does.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true, // pass the client's encoding through untouched
		// HTTP/1.1 only: WebSocket upgrades (tunnels, attach/ws) need it.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// tunnelURL returns the ws(s) URL of the control plane's tunnel endpoint.
func tunnelURL(u *url.URL) string {
	t := *u
	t.Scheme = "ws"
	if u.Scheme == "https" {
		t.Scheme = "wss"
	}
	t.Path = strings.TrimSuffix(u.Path, "/") + TunnelPath
	t.RawPath = ""
	t.RawQuery = ""
	t.Fragment = ""
	return t.String()
}

// ServeHTTP forwards one request: hijacked ones through a tunnel, the rest
// through the reverse proxy.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if needsTunnel(r) {
		f.serveTunnel(w, r)
		return
	}
	if followsLogs(r) {
		f.serveLogsFollow(w, r)
		return
	}
	if streamsEvents(r) {
		f.serveEvents(w, r)
		return
	}
	if f.binds != nil && isCreate(r) {
		f.recordBinds(r)
	}
	// An upload (docker load, import) is still being sent while the
	// control plane's progress answer comes back.
	_ = http.NewResponseController(w).EnableFullDuplex()
	f.proxy.ServeHTTP(&headerFlusher{ResponseWriter: w}, r)
}

// headerFlusher sends the headers of a streamed answer (one without a
// Content-Length: wait, pull progress, attach of a silent container) as
// soon as they are written, as the Docker engine does; ReverseProxy alone
// holds them until the first byte of the body, and clients that wait for
// the headers before they go on would block.
type headerFlusher struct {
	http.ResponseWriter
}

func (h *headerFlusher) WriteHeader(code int) {
	h.ResponseWriter.WriteHeader(code)
	if code >= 200 && h.Header().Get("Content-Length") == "" {
		_ = http.NewResponseController(h.ResponseWriter).Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (h *headerFlusher) Unwrap() http.ResponseWriter { return h.ResponseWriter }

var (
	versionPrefix = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)?/`)
	hijackPath    = regexp.MustCompile(`^/(containers/[^/]+/attach|exec/[^/]+/start)$`)
)

// maxCreateBody bounds what the forwarder reads of a container create to
// learn its binds (a create is a few KiB; a larger one goes on unread).
const maxCreateBody = 4 << 20

// isCreate reports whether r is a container create.
func isCreate(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	p := r.URL.Path
	if loc := versionPrefix.FindStringIndex(p); loc != nil {
		p = p[loc[1]-1:]
	}
	return p == "/containers/create"
}

// recordBinds tells f.binds of r's body and puts the body back for the
// proxy.
func (f *Forwarder) recordBinds(r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxCreateBody+1))
	if err != nil || len(b) > maxCreateBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	if err := f.binds.RecordCreate(b); err != nil {
		f.log.Warn("record the binds of a create", "err", err)
	}
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// needsTunnel reports whether docker hijacks r's connection: an upgrade to
// anything but WebSocket, or a POST to attach or exec start.
func needsTunnel(r *http.Request) bool {
	if up := r.Header.Get("Upgrade"); up != "" {
		return !strings.EqualFold(strings.TrimSpace(up), "websocket")
	}
	if r.Method != http.MethodPost {
		return false
	}
	p := r.URL.Path
	if loc := versionPrefix.FindStringIndex(p); loc != nil {
		p = p[loc[1]-1:]
	}
	return hijackPath.MatchString(p)
}

// rewrite points a proxied request at the upstream, path kept as is.
func (f *Forwarder) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(f.upstream)
	f.authorize(pr.Out.Header)
}

func (f *Forwarder) authorize(h http.Header) {
	tok := f.token
	if f.tokens != nil {
		var err error
		if tok, err = f.tokens(); err != nil {
			f.log.Warn("no identity token", "err", err)
		}
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	if f.clientID != "" {
		h.Set(clientHeader, f.clientID)
	}
	if f.socket != "" {
		h.Set(socketHeader, f.socket)
	}
}

// clientHeader carries Config.Client (clientlink.HeaderClient; the
// packages do not import each other).
const clientHeader = "X-Sockerless-Client"

// socketHeader carries Config.Socket (dockerapi.HeaderSocket).
const socketHeader = "X-Sockerless-Socket"

// proxyError answers a request the upstream did not answer.
func (f *Forwarder) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	f.log.Warn("upstream request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusBadGateway, f.unreachable(err))
}

func (f *Forwarder) unreachable(err error) string {
	return fmt.Sprintf("cannot reach control plane at %s: %v", f.upstream.Redacted(), err)
}

// writeError writes Docker's error body {"message": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Shutdown waits for open tunnels to end; when ctx ends first it closes them
// and returns ctx's error. Call it alongside http.Server.Shutdown, which
// neither tracks nor closes hijacked connections. New tunnels are refused
// from now on.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.shutdown = true
	f.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		f.active.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		f.cancel()
		f.mu.Lock()
		for s := range f.streams {
			s.close()
		}
		f.mu.Unlock()
		<-idle
	}
	f.cancel()
	f.transport.CloseIdleConnections()
	return err
}
