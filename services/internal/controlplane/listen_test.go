package controlplane

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/agent/proto"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		in            string
		network, addr string
		bad           bool
	}{
		{in: "unix:///run/s.sock", network: "unix", addr: "/run/s.sock"},
		{in: "/run/s.sock", network: "unix", addr: "/run/s.sock"},
		{in: "tcp://127.0.0.1:2375", network: "tcp", addr: "127.0.0.1:2375"},
		{in: "ftp://x", bad: true},
		{in: "s.sock", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseListen(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %q", tt.in)
				}
				return
			}
			if err != nil || got.network != tt.network || got.addr != tt.addr {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := requireToken("T", ok)
	tests := []struct {
		name, path, auth string
		status           int
	}{
		{"right token passes", "/containers/json", "Bearer T", 204},
		{"no token is 401", "/containers/json", "", 401},
		{"wrong token is 401", "/containers/json", "Bearer X", 401},
		{"agent dial has its own secret", proto.ConnectPath, "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 401 && !strings.Contains(w.Body.String(), `"message"`) {
				t.Fatalf("body %q is not a docker error", w.Body.String())
			}
		})
	}
	w := httptest.NewRecorder()
	requireToken("", ok).ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 {
		t.Fatalf("an empty configured token must refuse everything, got %d", w.Code)
	}
}
