package dockerapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// newAPI serves the API over the real engine and an embedded store with one
// image, busybox:latest. Nothing here starts a container, so the engine has
// no functions or agents.
func newAPI(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.PutImage(context.Background(), &engine.Image{
		ID: "sha256:" + strings.Repeat("ab", 32), RepoTags: []string{"busybox:latest"}, Created: time.Unix(1700000000, 0),
		OS: "linux", Arch: "amd64", Config: &container.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// No fleet: containers are created, and nothing makes functions.
	e := engine.New(engine.Config{Store: st, Agents: noAgents{}})
	t.Cleanup(func() { e.Close() })
	srv := httptest.NewServer(New(e, Config{}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIStatusesAndMessages(t *testing.T) {
	srv := newAPI(t)
	if code, _ := do(t, srv, "POST", "/containers/create?name=taken", `{"Image":"busybox"}`); code != 201 {
		t.Fatalf("create = %d", code)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"ping without version", "GET", "/_ping", "", 200, ""},
		{"ping with version", "GET", "/v1.44/_ping", "", 200, ""},
		{"too old a version", "GET", "/v1.12/version", "", 400, "client version 1.12 is too old"},
		{"too new a version", "GET", "/v1.99/version", "", 400, "client version 1.99 is too new"},
		{"unknown container", "GET", "/v1.50/containers/nope/json", "", 404, "No such container: nope"},
		{"unknown image", "POST", "/containers/create", `{"Image":"nosuch"}`, 404, "No such image: nosuch:latest"},
		{"bad JSON", "POST", "/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"no image", "POST", "/containers/create", `{}`, 400, "config cannot be empty"},
		{"bad name", "POST", "/containers/create?name=-x", `{"Image":"busybox"}`, 400, "Invalid container name (-x)"},
		{"name conflict", "POST", "/containers/create?name=taken", `{"Image":"busybox"}`, 409, `The container name "/taken" is already in use`},
		{"stop of a created container is 304", "POST", "/containers/taken/stop", "", 304, ""},
		{"kill of a created container", "POST", "/containers/taken/kill", "", 409, "is not running"},
		{"bad signal", "POST", "/containers/taken/kill?signal=NOPE", "", 400, "Invalid signal: NOPE"},
		{"unsupported route is 501", "GET", "/containers/taken/export", "", 501, "not supported"},
		{"unknown route is 404", "GET", "/nothing/here", "", 404, "page not found"},
		{"bad filter", "GET", "/containers/json?filters=" + `{"nope":{"x":true}}`, "", 400, "invalid filter 'nope'"},
		{"image name with a slash", "GET", "/images/docker.io/library/busybox/json", "", 200, ""},
		{"unknown image with a slash", "GET", "/images/team/nosuch/json", "", 404, "No such image: team/nosuch:latest"},
		{"image inspect", "GET", "/images/busybox/json", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, tt.method, tt.path, tt.body)
			if code != tt.status {
				t.Fatalf("status = %d (%s), want %d", code, body, tt.status)
			}
			if tt.message == "" {
				return
			}
			var m struct{ Message string }
			if err := json.Unmarshal([]byte(body), &m); err != nil || !strings.Contains(m.Message, tt.message) {
				t.Fatalf("body %s, want message containing %q", body, tt.message)
			}
		})
	}
}

func TestAPIListAndInspectShapes(t *testing.T) {
	srv := newAPI(t)
	_, body := do(t, srv, "POST", "/containers/create?name=web", `{"Image":"busybox","Env":["A=1"],"Labels":{"team":"x"},"Cmd":["sleep","1"]}`)
	var cr container.CreateResponse
	if err := json.Unmarshal([]byte(body), &cr); err != nil || len(cr.ID) != 64 {
		t.Fatalf("create response %s", body)
	}
	_, body = do(t, srv, "GET", "/containers/json?all=1&filters="+`{"label":{"team=x":true}}`, "")
	var list []container.Summary
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 1 || list[0].Names[0] != "/web" || list[0].Status != "Created" || list[0].Command != "sleep 1" {
		t.Fatalf("list %s", body)
	}
	_, body = do(t, srv, "GET", "/containers/json", "")
	if strings.TrimSpace(body) != "[]" {
		t.Fatalf("running list %s", body)
	}
	_, body = do(t, srv, "GET", "/containers/web/json", "")
	var in container.InspectResponse
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	if in.ID != cr.ID || in.Name != "/web" || in.State.Status != "created" || in.Path != "sleep" || in.Config.Env[0] != "A=1" || in.Config.Env[1] != "PATH=/bin" || in.HostConfig == nil {
		t.Fatalf("inspect %s", body)
	}
	if code, _ := do(t, srv, "DELETE", "/containers/web", ""); code != 204 {
		t.Fatalf("rm = %d", code)
	}
}

// noAgents is a hub where no agent ever connects.
type noAgents struct{}

func (noAgents) Session(ctx context.Context, id string) (engine.AgentSession, error) {
	return nil, engine.Errorf(engine.KindUnavailable, "no agent")
}
func (noAgents) Connected(string) bool { return false }
