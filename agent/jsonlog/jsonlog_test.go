package jsonlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
)

func TestLogLine(t *testing.T) {
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want map[string]string
	}{
		{"info has INFO severity and message", func(l *slog.Logger) { l.Info("hello", "k", "v") }, map[string]string{"severity": "INFO", "message": "hello", "k": "v"}},
		{"warn is WARNING", func(l *slog.Logger) { l.Warn("w") }, map[string]string{"severity": "WARNING", "message": "w"}},
		{"error is ERROR", func(l *slog.Logger) { l.Error("e") }, map[string]string{"severity": "ERROR", "message": "e"}},
		{"debug is DEBUG", func(l *slog.Logger) { l.Debug("d") }, map[string]string{"severity": "DEBUG", "message": "d"}},
		{"secret attributes are redacted", func(l *slog.Logger) { l.Info("m", "secret", "hunter2", "Authorization", "Bearer x") }, map[string]string{"secret": Redacted, "Authorization": Redacted}},
		{"tokens and passwords are redacted", func(l *slog.Logger) { l.Info("m", "agentToken", "hunter2", "password", "hunter2") }, map[string]string{"agentToken": Redacted, "password": Redacted}},
		{"registry auth is redacted", func(l *slog.Logger) { l.Info("m", "X-Registry-Auth", "hunter2") }, map[string]string{"X-Registry-Auth": Redacted}},
		{"bearer value under a neutral key is redacted", func(l *slog.Logger) { l.Info("m", "value", "Bearer hunter2") }, map[string]string{"value": Redacted}},
		{"secrets in groups are redacted", func(l *slog.Logger) { l.Info("m", slog.Group("req", "token", "hunter2")) }, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf, slog.LevelDebug))
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("not JSON: %q", buf.String())
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("%s = %v, want %q (line %s)", k, got[k], v, buf.String())
				}
			}
			if _, ok := got["level"]; ok {
				t.Fatalf("line still has level: %s", buf.String())
			}
			if bytes.Contains(buf.Bytes(), []byte("hunter2")) {
				t.Fatal("secret in log line")
			}
		})
	}
}

func TestHeaderRedacted(t *testing.T) {
	var buf bytes.Buffer
	h := http.Header{"Authorization": {"Bearer hunter2"}, "X-Registry-Auth": {"hunter2"}, "Content-Type": {"application/json"}}
	New(&buf, slog.LevelInfo).Info("request", "header", h)
	if bytes.Contains(buf.Bytes(), []byte("hunter2")) {
		t.Fatalf("secret header in log line: %s", buf.String())
	}
	if !bytes.Contains(buf.Bytes(), []byte("application/json")) {
		t.Fatalf("plain header lost: %s", buf.String())
	}
	if h.Get("Authorization") != "Bearer hunter2" {
		t.Fatal("the caller's header was changed")
	}
}
