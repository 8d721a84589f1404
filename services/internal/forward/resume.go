package forward

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/sockerless/sockerless/services/internal/resume"
)

// logsPath and eventsPath match docker logs and docker events requests,
// with or without a version prefix.
var (
	logsPath   = regexp.MustCompile(`^(/v[0-9]+(\.[0-9]+)?)?/containers/[^/]+/logs$`)
	eventsPath = regexp.MustCompile(`^(/v[0-9]+(\.[0-9]+)?)?/events$`)
)

// resumeFor is how long the forwarder keeps trying to resume a cut stream:
// a control plane restart, a redeploy.
const resumeFor = time.Minute

// followsLogs reports whether r is `docker logs -f`.
func followsLogs(r *http.Request) bool {
	if r.Method != http.MethodGet || !logsPath.MatchString(r.URL.Path) {
		return false
	}
	v := r.URL.Query().Get("follow")
	return v == "1" || v == "true" || v == "True"
}

// serveLogsFollow forwards `docker logs -f` and, when the control plane
// cuts the stream (it restarts), asks for it again from where the client
// is (package resume), so the client sees one stream.
func (f *Forwarder) serveLogsFollow(w http.ResponseWriter, r *http.Request) {
	var anchor string
	var sent uint64
	f.serveResumable(w, r, func(req *http.Request, again bool) {
		if again {
			req.Header.Set(resume.HeaderAnchor, anchor)
			req.Header.Set(resume.HeaderSkip, strconv.FormatUint(sent, 10))
		}
	}, func(resp *http.Response) bool {
		anchor = resp.Header.Get(resume.HeaderAnchor)
		return anchor != ""
	}, func(body io.Reader) (bool, error) {
		n, err := io.Copy(flushWriter{w}, body)
		sent += uint64(n)
		return n > 0, err
	})
}

// serveEvents forwards `docker events` and, when the control plane cuts
// the stream, asks again for the events since the last one the client got
// (they are stored), dropping those it already has.
func (f *Forwarder) serveEvents(w http.ResponseWriter, r *http.Request) {
	var last int64 // timeNano of the last event sent
	f.serveResumable(w, r, func(req *http.Request, again bool) {
		if again && last > 0 {
			q := req.URL.Query()
			q.Set("since", fmt.Sprintf("%d.%09d", last/1e9, last%1e9))
			req.URL.RawQuery = q.Encode()
		}
	}, func(*http.Response) bool { return true }, func(body io.Reader) (bool, error) {
		dec := json.NewDecoder(body)
		progress := false
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					return progress, nil
				}
				return progress, err
			}
			var m struct {
				TimeNano int64 `json:"timeNano"`
			}
			_ = json.Unmarshal(raw, &m)
			if m.TimeNano != 0 && m.TimeNano <= last {
				continue // sent before the cut
			}
			if _, err := (flushWriter{w}).Write(append(raw, '\n')); err != nil {
				return progress, err
			}
			progress = true
			if m.TimeNano > last {
				last = m.TimeNano
			}
		}
	})
}

// serveResumable forwards a long GET stream and resumes it when it is cut
// (an error, not a clean end), for up to resumeFor of failures in a row.
// prepare adds what resumes it to a request (again: not the first);
// first reads the first answer's headers and says whether the stream can
// be resumed; copy forwards a body, reporting whether it made progress.
func (f *Forwarder) serveResumable(w http.ResponseWriter, r *http.Request,
	prepare func(req *http.Request, again bool), first func(*http.Response) bool,
	copy func(io.Reader) (progress bool, err error)) {
	started, resumable := false, false
	failingSince := time.Time{}
	backoff := 100 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, f.upstreamURL(r), nil)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		req.Header = r.Header.Clone()
		f.authorize(req.Header)
		prepare(req, started)
		resp, err := f.transport.RoundTrip(req)
		switch {
		case err != nil && !started:
			f.proxyError(w, r, err)
			return
		case err == nil && !started:
			resumable = first(resp)
			copyHeader(w.Header(), resp.Header)
			w.Header().Del(resume.HeaderAnchor)
			w.WriteHeader(resp.StatusCode)
			_ = http.NewResponseController(w).Flush() // headers go out at once
			started = true
			if resp.StatusCode != http.StatusOK || !resumable {
				_, _ = io.Copy(flushWriter{w}, resp.Body)
				resp.Body.Close()
				return
			}
		case err == nil && resp.StatusCode != http.StatusOK:
			// The container went while we were away: the stream ends.
			resp.Body.Close()
			return
		}
		if err == nil {
			progress, cerr := copy(resp.Body)
			resp.Body.Close()
			if progress {
				failingSince, backoff = time.Time{}, 100*time.Millisecond
			}
			if cerr == nil {
				return // the stream ended
			}
			err = cerr
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) > resumeFor {
			f.log.Warn("gave up resuming a stream", "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler) // the client sees the stream cut
		}
		f.log.Info("stream cut; resuming", "path", r.URL.Path, "err", err)
		select {
		case <-r.Context().Done():
			return
		case <-f.stop.Done():
			panic(http.ErrAbortHandler)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// streamsEvents reports whether r is `docker events`.
func streamsEvents(r *http.Request) bool {
	return r.Method == http.MethodGet && eventsPath.MatchString(r.URL.Path)
}

// upstreamURL is r's URL on the control plane.
func (f *Forwarder) upstreamURL(r *http.Request) string {
	u := *f.upstream
	u.Path = singleJoin(f.upstream.Path, r.URL.Path)
	u.RawPath = ""
	u.RawQuery = r.URL.RawQuery
	return u.String()
}

// singleJoin joins a base path and a request path with one slash.
func singleJoin(a, b string) string {
	switch {
	case a == "" || a == "/":
		return b
	case a[len(a)-1] == '/' && b != "" && b[0] == '/':
		return a + b[1:]
	case a[len(a)-1] != '/' && (b == "" || b[0] != '/'):
		return a + "/" + b
	}
	return a + b
}

// copyHeader copies an upstream answer's headers, hop-by-hop ones aside.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Content-Length":
			continue
		}
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// flushWriter flushes after every write: a followed stream must not wait
// in a buffer.
type flushWriter struct{ w http.ResponseWriter }

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if f, ok := fw.w.(http.Flusher); ok {
		f.Flush()
	}
	if err != nil {
		return n, errClientGone
	}
	return n, nil
}

// errClientGone marks a write to the client that failed.
var errClientGone = errors.New("client gone")
