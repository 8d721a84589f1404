package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/fleet"
)

type fakeCollector struct {
	got     *fleet.GCOptions
	results []fleet.GCResult
	err     error
}

func (f *fakeCollector) CollectFunctions(_ context.Context, opts fleet.GCOptions) ([]fleet.GCResult, error) {
	f.got = &opts
	return f.results, f.err
}

func TestGCEndpoint(t *testing.T) {
	deleted := []fleet.GCResult{
		{Name: "sockerless-a", Action: fleet.GCDeleted},
		{Name: "sockerless-b", Action: fleet.GCKept, Reason: "in use"},
	}
	tests := []struct {
		name       string
		method     string
		query      string
		err        error
		wantStatus int
		wantOpts   *fleet.GCOptions // nil: the engine is not called
		wantBody   string
	}{
		{name: "all", method: "POST", query: "all=true", wantStatus: 200, wantOpts: &fleet.GCOptions{All: true, Keep: -1}, wantBody: `"deleted":1`},
		{name: "older than days", method: "POST", query: "older-than=7d", wantStatus: 200, wantOpts: &fleet.GCOptions{OlderThan: 7 * 24 * time.Hour, Keep: -1}},
		{name: "older than duration and keep", method: "POST", query: "older-than=36h&keep=5", wantStatus: 200, wantOpts: &fleet.GCOptions{OlderThan: 36 * time.Hour, Keep: 5}},
		{name: "keep zero dry run", method: "POST", query: "keep=0&dry-run=1", wantStatus: 200, wantOpts: &fleet.GCOptions{Keep: 0, DryRun: true}},
		{name: "no rule is refused", method: "POST", query: "", wantStatus: 400, wantBody: "say which functions to delete"},
		{name: "all=false alone is refused", method: "POST", query: "all=false", wantStatus: 400, wantBody: "say which functions"},
		{name: "bad duration is refused", method: "POST", query: "older-than=soon", wantStatus: 400, wantBody: "older-than"},
		{name: "negative keep is refused", method: "POST", query: "keep=-1", wantStatus: 400, wantBody: "keep"},
		{name: "unknown parameter is refused", method: "POST", query: "al=true", wantStatus: 400, wantBody: `unknown parameter \"al\"`},
		{name: "GET is refused", method: "GET", query: "all=true", wantStatus: 405},
		{name: "a failed deletion is a 500 with the results", method: "POST", query: "all=true", err: errors.New("function sockerless-c: permission denied"),
			wantStatus: 500, wantOpts: &fleet.GCOptions{All: true, Keep: -1}, wantBody: "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCollector{results: deleted, err: tt.err}
			h := gcHandler(fc, slog.New(slog.NewTextHandler(io.Discard, nil)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, GCPath+"?"+tt.query, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("body %s does not contain %s", rec.Body, tt.wantBody)
			}
			switch {
			case tt.wantOpts == nil && fc.got != nil:
				t.Fatalf("engine called with %+v", *fc.got)
			case tt.wantOpts != nil && (fc.got == nil || *fc.got != *tt.wantOpts):
				t.Fatalf("engine called with %+v, want %+v", fc.got, *tt.wantOpts)
			}
		})
	}
}

func TestGCEndpointNeedsTheToken(t *testing.T) {
	fc := &fakeCollector{}
	mux := http.NewServeMux()
	mux.Handle(GCPath, gcHandler(fc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	h := requireToken(auth.New(auth.Config{AdminToken: "0123456789abcdef"}), testFailures(), mux)
	for _, hdr := range []string{"", "Bearer wrong"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", GCPath+"?all=true", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || fc.got != nil {
			t.Fatalf("auth %q: status %d, engine called %v", hdr, rec.Code, fc.got != nil)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", GCPath+"?all=true", nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || fc.got == nil {
		t.Fatalf("with the token: status %d", rec.Code)
	}
}
