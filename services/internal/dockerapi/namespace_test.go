package dockerapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
	"github.com/sockerless/sockerless/services/internal/volumes"
)

// nsHeader names the namespace of a test request; the control plane takes
// it from the caller's identity instead (package auth).
const nsHeader = "X-Test-Namespace"

// teamAPI serves the whole API (containers, execs, networks, volumes)
// over the real engine and an embedded store, with each request's
// namespace from nsHeader.
func teamAPI(t *testing.T) (*Server, *httptest.Server, *bolt.Store) {
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
	_, _ = st.UpdateFunction(context.Background(), "img-"+strings.Repeat("ab", 32)+"@test", func(*engine.Function) (*engine.Function, error) {
		return &engine.Function{Status: engine.FunctionReady, URL: "http://unused"}, nil
	})
	nets := netplane.New(netplane.Config{Store: st, Containers: st})
	t.Cleanup(func() { nets.Close() })
	vols := volumes.New(volumes.Config{Store: st})
	fl := fleet.New(fleet.Config{Store: st, Functions: noFunctions{}, Scope: "test"})
	t.Cleanup(func() { fl.Close() })
	e := engine.New(engine.Config{Store: st, Fleet: fl, Agents: noAgents{}, Functions: noFunctions{}, Networks: nets, Volumes: vols, BootTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { e.Close() })
	nets.SetEvents(e)
	s := New(e, Config{Networks: nets, Volumes: vols, Namespace: func(r *http.Request) string {
		if ns := r.Header.Get(nsHeader); ns != "" {
			return ns
		}
		return engine.DefaultNamespace
	}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv, st
}

// nsDo sends a request as namespace ns; a request still running after a
// moment (a wait, an attach) counts as accepted: status 0.
func nsDo(t *testing.T, srv *httptest.Server, ns, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(nsHeader, ns)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, ""
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return resp.StatusCode, string(b)
	}
	return resp.StatusCode, string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// objects are one namespace's objects of every kind, made fresh for each
// route (a route may remove them).
type objects struct {
	container, running, exec, network, volume, image string
}

func makeObjects(t *testing.T, srv *httptest.Server, st *bolt.Store, ns string, i int) objects {
	t.Helper()
	var o objects
	mk := func(name string) string {
		code, body := nsDo(t, srv, ns, "POST", "/containers/create?name="+name, `{"Image":"busybox","Cmd":["sleep","1"]}`)
		var cr container.CreateResponse
		if code != 201 || json.Unmarshal([]byte(body), &cr) != nil {
			t.Fatalf("create %s in %s: %d %s", name, ns, code, body)
		}
		return cr.ID
	}
	o.container = mk(fmt.Sprintf("%s-c%d", ns, i))
	o.running = mk(fmt.Sprintf("%s-r%d", ns, i))
	// A running state without an instance: enough for exec records.
	if _, err := st.UpdateContainer(t.Context(), ns, o.running, func(c *engine.Container) error {
		c.State.Status = engine.StatusRunning
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	code, body := nsDo(t, srv, ns, "POST", "/containers/"+o.running+"/exec", `{"Cmd":["true"]}`)
	var ex struct{ Id string }
	if code != 201 || json.Unmarshal([]byte(body), &ex) != nil {
		t.Fatalf("exec create: %d %s", code, body)
	}
	o.exec = ex.Id
	o.network = fmt.Sprintf("%s-n%d", ns, i)
	if code, body := nsDo(t, srv, ns, "POST", "/networks/create", `{"Name":"`+o.network+`"}`); code != 201 {
		t.Fatalf("network create: %d %s", code, body)
	}
	// An image only this namespace has seen (pulled, loaded, tagged).
	o.image = fmt.Sprintf("%s-app%d", ns, i)
	if err := st.PutImage(t.Context(), &engine.Image{ID: "sha256:" + randomHex(32), RepoTags: []string{o.image + ":latest"}, Seen: []string{ns},
		OS: "linux", Arch: "amd64", Config: &container.Config{Cmd: []string{"sh"}}}); err != nil {
		t.Fatal(err)
	}
	o.volume = fmt.Sprintf("%s-v%d", ns, i)
	if code, body := nsDo(t, srv, ns, "POST", "/volumes/create", `{"Name":"`+o.volume+`"}`); code != 201 {
		t.Fatalf("volume create: %d %s", code, body)
	}
	return o
}

// objectRoute says which object a route's parameter names and what a
// request of it carries; every route with a parameter must have one.
type objectRoute struct {
	kind  string // container, exec, network, volume, or "none": not a namespace object
	query string
	body  func(o objects) string
	// sub: the route names a part of the object the fixture's objects do
	// not have (a link alias), so the owner's answer is "No such" too.
	sub bool
}

// routeObjects classifies the parameterised routes of the route table.
var routeObjects = map[string]objectRoute{
	"/containers/{id}/json":       {kind: "container"},
	"/containers/{id}/start":      {kind: "container"},
	"/containers/{id}/stop":       {kind: "container"},
	"/containers/{id}/kill":       {kind: "container"},
	"/containers/{id}/wait":       {kind: "container"},
	"/containers/{id}/attach":     {kind: "container", query: "?stream=0&logs=1&stdout=1"},
	"/containers/{id}/attach/ws":  {kind: "container", query: "?logs=1&stdout=1"},
	"/containers/{id}/logs":       {kind: "container", query: "?stdout=1"},
	"/containers/{id}":            {kind: "container"},
	"/containers/{id}/{alias}":    {kind: "container", query: "?link=true", sub: true},
	"/containers/{id}/resize":     {kind: "container", query: "?h=10&w=10"},
	"/containers/{id}/restart":    {kind: "container"},
	"/containers/{id}/pause":      {kind: "container"},
	"/containers/{id}/unpause":    {kind: "container"},
	"/containers/{id}/rename":     {kind: "container", query: "?name=renamed"},
	"/containers/{id}/update":     {kind: "container", body: func(objects) string { return `{}` }},
	"/containers/{id}/top":        {kind: "container"},
	"/containers/{id}/stats":      {kind: "container", query: "?stream=false"},
	"/containers/{id}/archive":    {kind: "container", query: "?path=/etc"},
	"/containers/{id}/changes":    {kind: "container"},
	"/containers/{id}/export":     {kind: "container"},
	"/containers/{id}/exec":       {kind: "container", body: func(objects) string { return `{"Cmd":["true"]}` }},
	"/exec/{id}/start":            {kind: "exec", body: func(objects) string { return `{"Detach":true}` }},
	"/exec/{id}/resize":           {kind: "exec", query: "?h=10&w=10"},
	"/exec/{id}/json":             {kind: "exec"},
	"/networks/{id}":              {kind: "network"},
	"/networks/{id}/connect":      {kind: "network", body: func(o objects) string { return `{"Container":"` + o.container + `"}` }},
	"/networks/{id}/disconnect":   {kind: "network", body: func(o objects) string { return `{"Container":"` + o.container + `"}` }},
	"/volumes/{name}":             {kind: "volume"},
	"/distribution/{name}/json":   {kind: "none"},
	"/services/{id}":              {kind: "none"},
	"/services/{id}/update":       {kind: "none"},
	"/services/{id}/logs":         {kind: "none"},
	"/tasks/{id}":                 {kind: "none"},
	"/tasks/{id}/update":          {kind: "none"},
	"/tasks/{id}/logs":            {kind: "none"},
	"/nodes/{id}":                 {kind: "none"},
	"/nodes/{id}/update":          {kind: "none"},
	"/secrets/{id}":               {kind: "none"},
	"/secrets/{id}/update":        {kind: "none"},
	"/configs/{id}":               {kind: "none"},
	"/configs/{id}/update":        {kind: "none"},
	"/images/*":                   {kind: "image"},
	"/distribution/*":             {kind: "none"}, // a registry's image, not a stored one
	"/plugins/{id}":               {kind: "none"},
	"/containers/{id}/attach/ws/": {kind: "container"},
}

// ref is the reference a route's parameter takes for kind in o.
func (o objects) ref(kind string) string {
	switch kind {
	case "container":
		return o.container
	case "exec":
		return o.exec
	case "network":
		return o.network
	case "volume":
		return o.volume
	case "image":
		return o.image
	}
	return "x"
}

// TestCrossNamespaceMatrix checks every route of the route table: a
// request of one namespace on another's object answers exactly as on a
// missing object (404, same message), and the owner's request works.
func TestCrossNamespaceMatrix(t *testing.T) {
	s, srv, st := teamAPI(t)
	i := 0
	err := chi.Walk(s.mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !strings.ContainsAny(route, "{*") {
			return nil
		}
		i++
		spec, ok := routeObjects[route]
		if !ok {
			t.Errorf("%s %s: route with a parameter is not in routeObjects: say which namespace object it names", method, route)
			return nil
		}
		t.Run(method+" "+route, func(t *testing.T) {
			alice := makeObjects(t, srv, st, "alice", i)
			bob := makeObjects(t, srv, st, "bob", i)
			path := func(ref string) string {
				if spec.kind == "image" {
					return "/images/" + ref + map[string]string{"GET": "/json", "DELETE": "", "POST": "/tag?repo=stolen&tag=1"}[method]
				}
				if spec.kind == "exec" || strings.HasPrefix(route, "/exec/") {
					return strings.Replace(route, "{id}", ref, 1) + spec.query
				}
				p := strings.Replace(strings.Replace(route, "{id}", ref, 1), "{name}", ref, 1)
				return p + spec.query
			}
			body := func(o objects) string {
				if spec.body == nil {
					return ""
				}
				return spec.body(o)
			}
			ref := alice.ref(spec.kind)
			if spec.kind == "exec" && route == "/containers/{id}/exec" {
				ref = alice.running
			}
			// Another namespace's object answers as a missing one: the same
			// status and message, its reference swapped in.
			missing := missingRef(spec.kind, ref)
			code, got := nsDo(t, srv, "bob", method, path(ref), body(bob))
			mcode, want := nsDo(t, srv, "bob", method, path(missing), body(bob))
			want = strings.ReplaceAll(want, missing, ref)
			if spec.kind != "none" && mcode != http.StatusNotImplemented && (code != http.StatusNotFound || got != want) {
				t.Fatalf("bob on alice's %s: %d %q; on a missing one: %d %q", spec.kind, code, got, mcode, want)
			}
			if code != mcode || got != want {
				t.Fatalf("bob on alice's %s: %d %q, differs from a missing one: %d %q", spec.kind, code, got, mcode, want)
			}
			// The owner's request is served (whatever its outcome, it is not
			// "no such object").
			code, got = nsDo(t, srv, "alice", method, path(ref), body(alice))
			if spec.kind != "none" && !spec.sub && code == http.StatusNotFound && strings.Contains(got, "No such") {
				t.Fatalf("alice on her own %s: %d %s", spec.kind, code, got)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i < 30 {
		t.Fatalf("walked only %d parameterised routes", i)
	}
}

// missingRef is a reference of kind like ref that names nothing.
func missingRef(kind, ref string) string {
	switch kind {
	case "container":
		return randomHex(32)
	case "exec":
		return randomHex(32)
	}
	return ref + "x"
}

// noFunctions is a functions backend whose invocations fail at once.
type noFunctions struct{}

func (noFunctions) Create(context.Context, string, string) (string, error) {
	return "http://unused", nil
}
func (noFunctions) Invoke(context.Context, string, proto.Invocation) error {
	return errors.New("no functions in this test")
}
func (noFunctions) Delete(context.Context, string) error { return nil }

// TestNamespaceLists checks the routes without an object: lists, events,
// system df and prunes see and touch only the caller's namespace, and two
// namespaces may both name a container db.
func TestNamespaceLists(t *testing.T) {
	_, srv, st := teamAPI(t)
	ids := map[string]string{}
	for _, ns := range []string{"alice", "bob"} {
		if err := st.PutImage(t.Context(), &engine.Image{ID: "sha256:" + randomHex(32), RepoTags: []string{ns + "-only:latest"}, Seen: []string{ns}, Config: &container.Config{}}); err != nil {
			t.Fatal(err)
		}
		code, body := nsDo(t, srv, ns, "POST", "/containers/create?name=db", `{"Image":"busybox","Labels":{"owner":"`+ns+`"}}`)
		if code != 201 {
			t.Fatalf("%s creates db: %d %s", ns, code, body)
		}
		var cr container.CreateResponse
		_ = json.Unmarshal([]byte(body), &cr)
		ids[ns] = cr.ID
		for _, p := range []string{"/networks/create", "/volumes/create"} {
			if code, body := nsDo(t, srv, ns, "POST", p, `{"Name":"`+ns+`-only"}`); code != 201 {
				t.Fatalf("%s %s: %d %s", ns, p, code, body)
			}
		}
	}
	until := fmt.Sprint(time.Now().Add(time.Second).Unix())
	for _, tc := range []struct{ method, path string }{
		{"GET", "/containers/json?all=1"},
		{"GET", "/networks"},
		{"GET", "/volumes"},
		{"GET", "/events?since=1&until=" + until},
		{"GET", "/system/df"},
		{"GET", "/containers/db/json"},
		{"GET", "/images/json"},
	} {
		code, body := nsDo(t, srv, "bob", tc.method, tc.path, "")
		if code != 200 {
			if code == http.StatusNotImplemented {
				continue // system df needs the image operations
			}
			t.Fatalf("bob %s %s: %d %s", tc.method, tc.path, code, body)
		}
		if strings.Contains(body, ids["alice"][:12]) || strings.Contains(body, "alice") {
			t.Fatalf("bob's %s %s shows alice's objects: %s", tc.method, tc.path, body)
		}
		if !strings.Contains(body, "bob") && !strings.Contains(body, ids["bob"][:12]) {
			t.Fatalf("bob's %s %s misses his own: %s", tc.method, tc.path, body)
		}
	}
	for _, p := range []string{"/containers/prune", "/networks/prune", "/volumes/prune?filters=" + `{"all":["true"]}`} {
		if code, body := nsDo(t, srv, "bob", "POST", p, ""); code != 200 {
			t.Fatalf("bob %s: %d %s", p, code, body)
		}
	}
	// An image two namespaces have seen leaves one's view on rmi; the
	// other keeps it.
	if err := st.PutImage(t.Context(), &engine.Image{ID: "sha256:" + randomHex(32), RepoTags: []string{"shared:latest"}, Seen: []string{"alice", "bob"}, Config: &container.Config{}}); err != nil {
		t.Fatal(err)
	}
	// A name one namespace gives a shared image is its own.
	if err := st.PutImage(t.Context(), &engine.Image{ID: "sha256:" + randomHex(32), RepoTags: []string{"shared2:latest"}, Seen: []string{"alice", "bob"}, Config: &container.Config{}}); err != nil {
		t.Fatal(err)
	}
	if code, body := nsDo(t, srv, "alice", "POST", "/images/shared2/tag?repo=alice-name&tag=1", ""); code != 201 {
		t.Fatalf("alice tags shared: %d %s", code, body)
	}
	if code, body := nsDo(t, srv, "bob", "GET", "/images/alice-name:1/json", ""); code != 404 {
		t.Fatalf("bob sees alice's name for a shared image: %d %s", code, body)
	}
	if _, body := nsDo(t, srv, "bob", "GET", "/images/shared2/json", ""); strings.Contains(body, "alice-name") || !strings.Contains(body, "shared2") {
		t.Fatalf("bob's inspect of shared shows alice's name: %s", body)
	}
	if _, body := nsDo(t, srv, "bob", "GET", "/images/json", ""); strings.Contains(body, "alice-name") {
		t.Fatalf("bob's image list shows alice's name: %s", body)
	}
	if code, body := nsDo(t, srv, "bob", "DELETE", "/images/shared", ""); code != 200 {
		t.Fatalf("bob rmi shared: %d %s", code, body)
	}
	if code, _ := nsDo(t, srv, "bob", "GET", "/images/shared/json", ""); code != 404 {
		t.Fatalf("bob still sees shared after rmi: %d", code)
	}
	for _, p := range []string{"/containers/db/json", "/networks/alice-only", "/volumes/alice-only", "/images/alice-only/json", "/images/shared/json", "/images/alice-name:1/json"} {
		if code, body := nsDo(t, srv, "alice", "GET", p, ""); code != 200 {
			t.Fatalf("after bob's prunes, alice's %s: %d %s", p, code, body)
		}
	}
}
