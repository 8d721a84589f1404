package instances

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

// proxy forwards one request to in under the revision's timeout and
// reports whether the request was answered. It is not answered (false) only
// if mayRetry is set and no connection to in could be made: in has stopped
// listening (its process is ending), so the caller offers the request to
// another instance, as Google's front end does.
func (m *Manager) proxy(w http.ResponseWriter, r *http.Request, rev *run.Revision, p *pool, in *instance, mayRetry bool) (answered bool) {
	ctx, cancel := context.WithTimeout(r.Context(), rev.Timeout)
	defer cancel()
	timedOut := func() bool {
		return errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil
	}
	answered = true
	defer func() {
		stop := false
		if timedOut() {
			m.timeouts.Add(1)
			m.logger.Info("request timeout: stopping instance", "instance", in.id, "revision", rev.Name, "timeout", rev.Timeout)
			stop = true
		}
		if !answered {
			m.logger.Debug("instance refused the connection; retrying elsewhere", "instance", in.id)
			stop = true
		}
		if stop {
			p.mu.Lock()
			in.stopping = true
			p.mu.Unlock()
			in.stop()
		}
		p.release(in)
	}()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Host
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     in.transport,
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(m.logger.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			var op *net.OpError
			switch {
			case timedOut():
				http.Error(w, "upstream request timeout", http.StatusGatewayTimeout)
			case r.Context().Err() != nil:
			case mayRetry && errors.As(err, &op) && op.Op == "dial":
				answered = false
			case exitedSoon(in):
				http.Error(w, "Service Unavailable: the instance ended while handling the request", http.StatusServiceUnavailable)
			default:
				m.logger.Debug("proxy error", "instance", in.id, "err", err)
				http.Error(w, "Bad Gateway: the instance's response was malformed or the connection failed", http.StatusBadGateway)
			}
		},
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
	return answered
}

// exitedSoon reports whether in's process has ended or ends within a
// moment (a connection error usually precedes the exit by microseconds).
func exitedSoon(in *instance) bool {
	select {
	case <-in.exited:
		return true
	case <-time.After(500 * time.Millisecond):
		return false
	}
}
