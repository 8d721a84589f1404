package authn

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Failures answers failed authentications: it logs each one (never the
// credential), delays the answer by a backoff per source (so guessing a
// token costs time) and closes the connection (so a client that failed
// holds no file descriptor). The delay is bounded twice: per request by
// MaxDelay and in all by MaxSleepers requests waiting at once; beyond
// that the answer is immediate, so the slowing itself cannot be used to
// pile up connections.
type Failures struct {
	// BaseDelay is the delay after a source's first failure; each further
	// failure within Window doubles it, up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Window is how long a source's failures count.
	Window time.Duration
	// MaxSleepers is how many failed requests may wait at once.
	MaxSleepers int
	// TrustForwarded takes the source from the last X-Forwarded-For
	// entry, the one the front end in front of the control plane added
	// (Cloud Run); otherwise from the peer address.
	TrustForwarded bool
	// OnFailure, if set, is told of every failure (the audit trail).
	OnFailure func(r *http.Request, source, reason string)
	Logger    *slog.Logger

	mu       sync.Mutex
	sources  map[string]*failRecord
	sleepers int
}

type failRecord struct {
	n    int
	last time.Time
}

// maxSources bounds the memory of the per-source records.
const maxSources = 10000

// NewFailures returns Failures with the defaults: 100 ms doubling to 2 s
// per source over a minute, at most 64 requests waiting.
func NewFailures(log *slog.Logger) *Failures {
	if log == nil {
		log = slog.Default()
	}
	return &Failures{BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, Window: time.Minute, MaxSleepers: 64, Logger: log}
}

// Source is the client address a request's failures are counted under.
func (f *Failures) Source(r *http.Request) string {
	if f.TrustForwarded {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if s := strings.TrimSpace(parts[len(parts)-1]); s != "" {
				return s
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Delay records a failure of source and returns how long its answer waits.
func (f *Failures) Delay(source string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sources == nil {
		f.sources = map[string]*failRecord{}
	}
	rec := f.sources[source]
	if rec == nil || now.Sub(rec.last) > f.Window {
		if len(f.sources) >= maxSources {
			f.prune(now)
		}
		rec = &failRecord{}
		f.sources[source] = rec
	}
	rec.n++
	rec.last = now
	d := f.BaseDelay
	for i := 1; i < rec.n && d < f.MaxDelay; i++ {
		d *= 2
	}
	return min(d, f.MaxDelay)
}

// prune drops records older than the window, or all when none is.
func (f *Failures) prune(now time.Time) {
	for s, rec := range f.sources {
		if now.Sub(rec.last) > f.Window {
			delete(f.sources, s)
		}
	}
	if len(f.sources) >= maxSources {
		clear(f.sources)
	}
}

// Fail answers r as a failed authentication: logged, delayed, status with
// Docker's {"message": msg}, and the connection closed afterwards.
func (f *Failures) Fail(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	src := f.Source(r)
	f.Logger.Warn("authentication failed", "source", src, "method", r.Method, "path", r.URL.Path, "reason", reason)
	if f.OnFailure != nil {
		f.OnFailure(r, src, reason)
	}
	if d := f.Delay(src, time.Now()); d > 0 && f.enterSleep() {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		f.leaveSleep()
	}
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"message":` + jsonString(msg) + "}\n"))
}

func (f *Failures) enterSleep() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sleepers >= f.MaxSleepers {
		return false
	}
	f.sleepers++
	return true
}

func (f *Failures) leaveSleep() {
	f.mu.Lock()
	f.sleepers--
	f.mu.Unlock()
}
