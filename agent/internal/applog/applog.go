// Package applog builds the agent's logger: JSON lines on stderr with the
// "severity" and "message" keys Cloud Logging reads, so the agent's own
// diagnostics are classified correctly next to the container's output.
package applog

import (
	"io"
	"log/slog"
	"strings"
)

// redacted replaces the value of any attribute whose key names a secret, as
// a last line of defence: callers must not log secrets in the first place.
const redacted = "[redacted]"

// New returns a JSON logger writing to w at level and above.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replace}))
}

func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.LevelKey:
			return slog.String("severity", severity(a.Value.Any()))
		case slog.MessageKey:
			a.Key = "message"
			return a
		}
	}
	k := strings.ToLower(a.Key)
	if strings.Contains(k, "secret") || strings.Contains(k, "token") || k == "authorization" {
		return slog.String(a.Key, redacted)
	}
	return a
}

// severity maps a slog level to Cloud Logging's LogSeverity names.
func severity(v any) string {
	l, ok := v.(slog.Level)
	if !ok {
		return "DEFAULT"
	}
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}
