package authn

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBearer(t *testing.T) {
	tests := []struct {
		name, header, token string
		ok                  bool
	}{
		{"canonical scheme", "Bearer abc", "abc", true},
		{"lower-case scheme", "bearer abc", "abc", true},
		{"upper-case scheme", "BEARER abc", "abc", true},
		{"blanks around the token", "Bearer   abc  ", "abc", true},
		{"empty token refused", "Bearer ", "", false},
		{"blank token refused", "Bearer    ", "", false},
		{"other scheme refused", "Basic abc", "", false},
		{"no blank refused", "Bearerabc", "", false},
		{"nothing refused", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, ok := Bearer(tt.header)
			if tok != tt.token || ok != tt.ok {
				t.Fatalf("Bearer(%q) = %q, %v; want %q, %v", tt.header, tok, ok, tt.token, tt.ok)
			}
		})
	}
}

func TestExempt(t *testing.T) {
	const p = "/agent/v1/connect"
	tests := []struct {
		target string
		exempt bool
	}{
		{"/agent/v1/connect", true},
		{"/agent/v1/connect?x=1", true},
		{"/agent%2Fv1%2Fconnect", false},
		{"/agent/v1%2Fconnect", false},
		{"/%61gent/v1/connect", false},
		{"//agent/v1/connect", false},
		{"/agent/v1/connect/", false},
		{"/agent/v1/./connect", false},
		{"/x/../agent/v1/connect", false},
		{"/agent/v1/connect/../../../containers/json", false},
		{"/containers/json", false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://h"+tt.target, nil)
			if got := Exempt(r, p); got != tt.exempt {
				t.Fatalf("Exempt(%s) = %v, want %v", tt.target, got, tt.exempt)
			}
		})
	}
}

func TestFailuresBackOffPerSource(t *testing.T) {
	f := NewFailures(slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Unix(1000, 0)
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if d := f.Delay("1.2.3.4", now); d != w*time.Millisecond {
			t.Fatalf("failure %d: delay %v, want %v", i+1, d, w*time.Millisecond)
		}
	}
	if d := f.Delay("5.6.7.8", now); d != 100*time.Millisecond {
		t.Fatalf("another source starts at %v, want 100ms", d)
	}
	if d := f.Delay("1.2.3.4", now.Add(2*time.Minute)); d != 100*time.Millisecond {
		t.Fatalf("after the window a source starts again at %v, want 100ms", d)
	}
}

func TestFailAnswersClosesAndNeverLogsTheToken(t *testing.T) {
	var logs strings.Builder
	f := NewFailures(slog.New(slog.NewTextHandler(&logs, nil)))
	f.BaseDelay = time.Millisecond
	var reported string
	f.OnFailure = func(_ *http.Request, src, reason string) { reported = src + " " + reason }
	r := httptest.NewRequest("GET", "/containers/json", nil)
	r.Header.Set("Authorization", "Bearer s3cret-token")
	w := httptest.NewRecorder()
	f.Fail(w, r, 401, "wrong token", "Unauthorized")
	if w.Code != 401 || w.Header().Get("Connection") != "close" || !strings.Contains(w.Body.String(), `"message":"Unauthorized"`) {
		t.Fatalf("answer %d %q %q", w.Code, w.Header(), w.Body)
	}
	if strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "authentication failed") {
		t.Fatalf("log %q", logs.String())
	}
	if reported != "192.0.2.1 wrong token" {
		t.Fatalf("OnFailure got %q", reported)
	}
}

func TestFailDoesNotWaitBeyondMaxSleepers(t *testing.T) {
	f := NewFailures(slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.BaseDelay, f.MaxDelay, f.MaxSleepers = time.Hour, time.Hour, 0
	done := make(chan struct{})
	go func() {
		f.Fail(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), 401, "x", "x")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a failure waited although no sleeper slot was free")
	}
}

func TestSourceTrustsOnlyTheLastForwardedEntry(t *testing.T) {
	f := NewFailures(nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 9.9.9.9")
	if s := f.Source(r); s != "192.0.2.1" {
		t.Fatalf("untrusted source %q", s)
	}
	f.TrustForwarded = true
	if s := f.Source(r); s != "9.9.9.9" {
		t.Fatalf("trusted source %q", s)
	}
}
