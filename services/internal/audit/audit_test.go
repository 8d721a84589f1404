package audit

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sockerless/sockerless/services/internal/auth"
)

type memSink struct {
	mu sync.Mutex
	rs []Record
}

func (m *memSink) Write(_ context.Context, r Record) {
	m.mu.Lock()
	m.rs = append(m.rs, r)
	m.mu.Unlock()
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		method, target, path, action, object string
	}{
		{"POST", "/v1.47/containers/create?name=web&x=secret", "/containers/create", "containers.create", "web"},
		{"POST", "/containers/abc/start", "/containers/abc/start", "containers.start", "abc"},
		{"DELETE", "/v1.41/containers/abc?force=1", "/containers/abc", "containers.delete", "abc"},
		{"POST", "/containers/abc/exec", "/containers/abc/exec", "containers.exec", "abc"},
		{"POST", "/exec/e1/start", "/exec/e1/start", "exec.start", "e1"},
		{"POST", "/images/create?fromImage=busybox&tag=1", "/images/create", "images.pull", "busybox:1"},
		{"POST", "/images/me/app:1/tag?repo=x", "/images/me/app:1/tag", "images.tag", "me/app:1"},
		{"DELETE", "/images/me/app:1", "/images/me/app:1", "images.delete", "me/app:1"},
		{"POST", "/networks/create", "/networks/create", "networks.create", ""},
		{"POST", "/containers/prune", "/containers/prune", "containers.prune", ""},
		{"POST", "/sockerless/v1/tokens", "/sockerless/v1/tokens", "sockerless.tokens", ""},
		{"DELETE", "/sockerless/v1/tokens/t1", "/sockerless/v1/tokens/t1", "sockerless.tokens", "t1"},
		{"POST", "/commit?container=abc", "/commit", "commit", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			path, action, object := describe(httptest.NewRequest(tt.method, tt.target, nil))
			if path != tt.path || action != tt.action || object != tt.object {
				t.Fatalf("got %q %q %q; want %q %q %q", path, action, object, tt.path, tt.action, tt.object)
			}
		})
	}
}

func TestMiddlewareRecordsMutatingCallsOnce(t *testing.T) {
	sink := &memSink{}
	h := Middleware(sink, func(*http.Request) string { return "1.2.3.4" }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/containers/abc/attach" {
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack through the recorder: %v", err)
				return
			}
			c.Close()
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("{}"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctxID := auth.Identity{Member: "alice", Namespace: "team", Role: auth.RoleMember}
	req := httptest.NewRequest("POST", "/containers/create?name=db", strings.NewReader(`{"Env":["PW=x"]}`))
	req = req.WithContext(auth.WithIdentity(req.Context(), ctxID))
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/containers/json", nil))

	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("POST /containers/abc/attach HTTP/1.1\r\nHost: x\r\n\r\n"))
	bufio.NewReader(c).ReadString('\n')
	c.Close()

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.rs) != 2 {
		t.Fatalf("records %+v, want the create and the attach", sink.rs)
	}
	r := sink.rs[0]
	if r.Who != "alice" || r.Namespace != "team" || r.Action != "containers.create" || r.Object != "db" || r.Status != 201 || r.Source != "1.2.3.4" {
		t.Fatalf("record %+v", r)
	}
	if a := sink.rs[1]; a.Action != "containers.attach" || a.Status != http.StatusSwitchingProtocols {
		t.Fatalf("attach record %+v", a)
	}
}
