// Package jsonlog builds the logger of all three Sockerless binaries (the
// control plane, the forwarder and the agent): JSON lines with the
// "severity" and "message" keys Cloud Logging reads, severities named as
// Cloud Logging names them (WARNING, not WARN), and the values of secret
// attributes redacted. It lives beside the agent, outside its internal tree,
// so that the services may import it while the agent imports nothing of
// theirs.
package jsonlog

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Redacted replaces the value of any attribute that carries a secret, as a
// last line of defence: callers must not log secrets in the first place.
const Redacted = "[redacted]"

// New returns a JSON logger writing to w at level and above.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: Replace}))
}

// Replace is the handler's ReplaceAttr: it renames slog's level and msg keys
// to Cloud Logging's and redacts secrets at any depth of groups.
func Replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.LevelKey:
			return slog.String("severity", Severity(a.Value.Any()))
		case slog.MessageKey:
			a.Key = "message"
			return a
		}
	}
	if SecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch v := a.Value.Any().(type) {
	case http.Header:
		return slog.Any(a.Key, redactHeader(v))
	case string:
		if secretValue(v) {
			return slog.String(a.Key, Redacted)
		}
	}
	return a
}

// SecretKey reports whether an attribute or header named key holds a secret
// (tokens, passwords, credentials, Authorization, X-Registry-Auth).
func SecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"secret", "token", "password", "passwd", "authorization", "registry-auth", "registryauth", "identitytoken", "credential", "cookie", "apikey", "api_key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return k == "auth" || k == "x-registry-config"
}

// secretValue reports whether a string value is itself a credential, e.g. an
// Authorization header logged under a neutral key.
func secretValue(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	return strings.HasPrefix(l, "bearer ") || strings.HasPrefix(l, "basic ")
}

func redactHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if SecretKey(k) {
			out[k] = []string{Redacted}
			continue
		}
		out[k] = v
	}
	return out
}

// Severity maps a slog level to Cloud Logging's LogSeverity names.
func Severity(v any) string {
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
