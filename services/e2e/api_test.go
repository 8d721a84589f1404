package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiHost is one Engine API endpoint spoken to in raw HTTP: the dev
// socket, the forwarder or the Docker engine.
type apiHost struct {
	name, host string
	client     *http.Client
}

// apiHosts returns the stack's two unix sockets and, where it answers,
// the machine's Docker engine, each with a raw HTTP client.
func apiHosts(t *testing.T, s *stack) []apiHost {
	t.Helper()
	var out []apiHost
	for _, h := range pauseHosts(t, s) {
		a := apiHost{name: h.name, host: h.host, client: unixClient(strings.TrimPrefix(h.host, "unix://"))}
		if h.name != "docker" { // the engine has it loaded; a pull would go to the internet
			a.must(t, http.StatusOK, "POST", "/images/create?fromImage=busybox&tag=latest", nil, nil)
		}
		out = append(out, a)
	}
	return out
}

// do makes one API request (body: nil, []byte, or a value sent as JSON)
// and returns the answer with its body unread; ctx bounds it.
func (h apiHost) do(t testing.TB, ctx context.Context, method, path string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "application/x-tar"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker/v1.41"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", h.name, method, path, err)
	}
	return resp
}

// call makes a request bounded by three minutes and returns the status and
// the whole body.
func (h apiHost) call(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp := h.do(t, ctx, method, path, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must makes a request that must answer want, and decodes a JSON body
// into out (if not nil).
func (h apiHost) must(t testing.TB, want int, method, path string, body, out any) []byte {
	t.Helper()
	code, b := h.call(t, method, path, body)
	if code != want {
		t.Fatalf("%s: %s %s: status %d, want %d: %s", h.name, method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %s %s: decode %q: %v", h.name, method, path, b, err)
		}
	}
	return b
}

// create makes a container from a create body and returns its ID; the
// test's end removes it.
func (h apiHost) create(t testing.TB, name string, body map[string]any) string {
	t.Helper()
	if body["Image"] == nil {
		body["Image"] = "busybox"
	}
	path := "/containers/create"
	if name != "" {
		path += "?name=" + name
		h.call(t, "DELETE", "/containers/"+name+"?force=1", nil)
	}
	var out struct{ Id string }
	h.must(t, http.StatusCreated, "POST", path, body, &out)
	t.Cleanup(func() { h.call(t, "DELETE", "/containers/"+out.Id+"?force=1", nil) })
	return out.Id
}

// run creates and starts a container.
func (h apiHost) run(t testing.TB, name string, body map[string]any) string {
	t.Helper()
	id := h.create(t, name, body)
	h.must(t, http.StatusNoContent, "POST", "/containers/"+id+"/start", nil, nil)
	return id
}

// state reads a container's inspect State.
func (h apiHost) state(t testing.TB, id string) map[string]any {
	t.Helper()
	var c struct{ State map[string]any }
	h.must(t, http.StatusOK, "GET", "/containers/"+id+"/json", nil, &c)
	return c.State
}

// pollState reads the container's state until ok holds (two minutes at most).
func (h apiHost) pollState(t testing.TB, id string, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := h.state(t, id)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: container never %s: %v", h.name, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
