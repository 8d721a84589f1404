package controlplane

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/auth"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		in            string
		network, addr string
		reusePort     bool
		bad           bool
	}{
		{in: "tcp://127.0.0.1:2375?reuseport=true", network: "tcp", addr: "127.0.0.1:2375", reusePort: true},
		{in: "tcp://127.0.0.1:2375?reuseport=maybe", bad: true},
		{in: "tcp://127.0.0.1:2375?backlog=9", bad: true},
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
			if err != nil || got.network != tt.network || got.addr != tt.addr || got.reusePort != tt.reusePort {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestReusePortLetsTwoProcessesShareAPort(t *testing.T) {
	a, err := parseListen("tcp://127.0.0.1:0?reuseport=true")
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	a.addr = first.Addr().String()
	second, err := a.listen()
	if err != nil {
		t.Fatalf("second listener on %s: %v", a.addr, err)
	}
	second.Close()
	plain, _ := parseListen("tcp://" + a.addr)
	if ln, err := plain.listen(); err == nil {
		ln.Close()
		t.Fatalf("a listener without reuseport shared %s", a.addr)
	}
}

func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := requireToken(auth.New(auth.Config{AdminToken: "T"}), testFailures(), ok)
	tests := []struct {
		name, path, auth string
		status           int
	}{
		{"right token passes", "/containers/json", "Bearer T", 204},
		{"no token is 401", "/containers/json", "", 401},
		{"wrong token is 401", "/containers/json", "Bearer X", 401},
		{"agent dial has its own secret", proto.ConnectPath, "", 204},
		{"agent mesh dial has its own secret", proto.MeshPath, "", 204},
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
	requireToken(auth.New(auth.Config{}), testFailures(), ok).ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 {
		t.Fatalf("an empty configured token must refuse everything, got %d", w.Code)
	}
}
