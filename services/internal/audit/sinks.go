package audit

import (
	"context"
	"log/slog"

	"cloud.google.com/go/logging"
)

// Sinks writes to each of its sinks.
type Sinks []Sink

// Write implements Sink.
func (s Sinks) Write(ctx context.Context, r Record) {
	for _, k := range s {
		k.Write(ctx, r)
	}
}

// SlogSink writes records to a log (the --dev control plane's own).
type SlogSink struct{ Logger *slog.Logger }

// Write implements Sink.
func (s SlogSink) Write(_ context.Context, r Record) {
	s.Logger.Info("audit", "who", r.Who, "namespace", r.Namespace, "source", r.Source, "method", r.Method,
		"path", r.Path, "action", r.Action, "object", r.Object, "status", r.Status, "reason", r.Reason)
}

// CloudSink writes records to Cloud Logging's LogID as JSON payloads,
// buffered by the client (Flush or Close sends what is pending).
type CloudSink struct{ Logger *logging.Logger }

// Write implements Sink.
func (s CloudSink) Write(_ context.Context, r Record) {
	sev := logging.Notice
	if r.Status >= 400 {
		sev = logging.Warning
	}
	s.Logger.Log(logging.Entry{Timestamp: r.Time, Severity: sev, Payload: r,
		Labels: map[string]string{"action": r.Action}})
}
