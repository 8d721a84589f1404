package audit

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
)

// Middleware records every mutating request that reaches next, once its
// status is known: when the handler writes its head or hijacks the
// connection (long calls such as wait or attach are recorded when they
// begin), else when it returns. source names the client's address.
func Middleware(sink Sink, source func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Mutating(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{ResponseWriter: w, emit: func(status int) {
			path, action, object := describe(r)
			out := Record{Time: time.Now(), Source: source(r), Method: r.Method, Path: path, Action: action, Object: object, Status: status}
			if id, ok := auth.FromContext(r.Context()); ok {
				out.Who, out.Namespace, out.Role = id.Member, id.Namespace, string(id.Role)
			}
			sink.Write(r.Context(), out)
		}}
		next.ServeHTTP(rec, r)
		rec.done(http.StatusOK)
	})
}

// Failure records a failed authentication (authn.Failures.OnFailure).
func Failure(sink Sink, r *http.Request, source, reason string) {
	path, _, _ := describe(r)
	sink.Write(r.Context(), Record{Time: time.Now(), Source: source, Method: r.Method, Path: path,
		Action: "auth.failed", Status: http.StatusUnauthorized, Reason: reason})
}

// recorder learns a response's status for the record.
type recorder struct {
	http.ResponseWriter
	once sync.Once
	emit func(status int)
}

func (rec *recorder) done(status int) { rec.once.Do(func() { rec.emit(status) }) }

func (rec *recorder) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		rec.done(code)
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.done(http.StatusOK)
	return rec.ResponseWriter.Write(b)
}

// Flush keeps streaming responses streaming.
func (rec *recorder) Flush() {
	rec.done(http.StatusOK)
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack keeps docker's hijacked streams (attach, exec start) working.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rec.done(http.StatusSwitchingProtocols)
	return http.NewResponseController(rec.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
