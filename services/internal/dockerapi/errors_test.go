package dockerapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestWriteError(t *testing.T) {
	const detail = "dial tcp 10.1.2.3:443: secret-host refused"
	tests := []struct {
		name       string
		err        error
		code       int
		wantMsg    string // exact public message; empty: generic
		detailSent bool
	}{
		{"not found keeps docker's text", engine.Errorf(engine.KindNotFound, "No such container: x"), 404, "No such container: x", false},
		{"invalid keeps docker's text", engine.Errorf(engine.KindInvalid, "invalid reference format"), 400, "invalid reference format", false},
		{"conflict keeps docker's text", engine.Errorf(engine.KindConflict, "name in use"), 409, "name in use", false},
		{"not implemented names the option", engine.Errorf(engine.KindNotImplemented, "--foo is not supported"), 501, "--foo is not supported", false},
		{"plain error is a generic 500", errors.New(detail), 500, "", false},
		// An engine error's Message is written for the client (Docker's own
		// 500 texts); only unclassified errors are replaced.
		{"internal engine error keeps its message", &engine.Error{Kind: engine.KindInternal, Message: "port is already allocated"}, 500, "port is already allocated", false},
		{"unavailable engine error keeps its message", &engine.Error{Kind: engine.KindUnavailable, Message: "cannot pull x: registry x did not answer as a registry"}, 503, "cannot pull x: registry x did not answer as a registry", false},
		{"wrapped plain error is a generic 503", fmt.Errorf("pull: %w", &engine.Error{Kind: engine.KindUnavailable, Err: errors.New(detail)}), 503, "", false},
		{"engine error keeps its message written for the client", &engine.Error{Kind: engine.KindInternal, Message: "port is already allocated", Err: errors.New(detail)}, 500, "port is already allocated", false},
		{"wrapped engine error keeps its message", fmt.Errorf("dial: %w", &engine.Error{Kind: engine.KindUnavailable, Message: "agent of c is not connected"}), 503, "agent of c is not connected", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			rec := httptest.NewRecorder()
			writeError(rec, slog.New(slog.NewJSONHandler(&logs, nil)), tt.err)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d", rec.Code, tt.code)
			}
			var body struct{ Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if tt.wantMsg != "" {
				if body.Message != tt.wantMsg {
					t.Fatalf("message %q, want %q", body.Message, tt.wantMsg)
				}
				return
			}
			if strings.Contains(body.Message, "secret-host") || !strings.HasPrefix(body.Message, http.StatusText(tt.code)) {
				t.Fatalf("5xx message %q is not generic", body.Message)
			}
			ref := body.Message[strings.LastIndex(body.Message, "(ref ")+5 : len(body.Message)-1]
			if !strings.Contains(logs.String(), "secret-host") || !strings.Contains(logs.String(), ref) {
				t.Fatalf("log %q lacks the detail or ref %q", logs.String(), ref)
			}
		})
	}
}
