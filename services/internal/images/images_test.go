package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// fixture is a "docker.io" mirror and a target registry, both local.
type fixture struct {
	mirror, target string
	writes         *atomic.Int64 // manifest PUTs on the target
	agent          string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
	m := httptest.NewServer(registry.New())
	t.Cleanup(m.Close)
	writes := &atomic.Int64{}
	reg := registry.New()
	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			writes.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tg.Close)
	f := &fixture{mirror: strings.TrimPrefix(m.URL, "http://"), target: strings.TrimPrefix(tg.URL, "http://"), writes: writes}
	bb, err := testimage.Busybox(testimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.push(t, "library/busybox:latest", bb)
	arm := mutate.ConfigMediaType(bb, "application/vnd.oci.image.config.v1+json")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: bb, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref, _ := name.ParseReference(f.mirror+"/team/multi:v1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	f.agent = copyAgent(t, "")
	return f
}

func (f *fixture) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(f.mirror+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) source(t *testing.T, agent string) *Source {
	t.Helper()
	s, err := New(Config{
		Mirrors:     map[string]string{"docker.io": "http://" + f.mirror},
		TargetRepo:  f.target + "/sockerless/wrapped",
		AgentBinary: agent,
		Insecure:    true,
		Keychain:    authn.NewMultiKeychain(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPullResolvesThroughMirror(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	tests := []struct {
		ref, tag, digestName string
	}{
		{"busybox", "busybox:latest", "busybox@sha256:"},
		{"docker.io/library/busybox:latest", "busybox:latest", "busybox@sha256:"},
		{"team/multi:v1", "team/multi:v1", "team/multi@sha256:"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			img, err := s.Pull(context.Background(), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.RepoTags) != 1 || img.RepoTags[0] != tt.tag || !strings.HasPrefix(img.RepoDigests[0], tt.digestName) {
				t.Fatalf("tags %v digests %v", img.RepoTags, img.RepoDigests)
			}
			if !strings.HasPrefix(img.ID, "sha256:") || img.OS != "linux" || img.Arch != "amd64" || img.Size <= 0 {
				t.Fatalf("image %+v", img)
			}
			if img.Config == nil || len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "sh" || !strings.HasPrefix(img.Source, f.mirror+"/") {
				t.Fatalf("config %+v source %s", img.Config, img.Source)
			}
		})
	}
}

func TestPullOfMissingImageIsDockersNotFound(t *testing.T) {
	f := newFixture(t)
	_, err := f.source(t, f.agent).Pull(context.Background(), "nosuch")
	var e *engine.Error
	if !errors.As(err, &e) || e.Kind != engine.KindNotFound || !strings.Contains(e.Message, "pull access denied for nosuch, repository does not exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestWrapAddsAgentLayerOnceAndCaches(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	ctx := context.Background()
	img, err := s.Pull(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	ref1, err := s.Wrap(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref1, f.target+"/sockerless/wrapped@sha256:") {
		t.Fatalf("wrapped ref %s", ref1)
	}
	r, _ := name.ParseReference(ref1, name.Insecure)
	w, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := w.ConfigFile()
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != AgentPath || cf.Config.Cmd != nil {
		t.Fatalf("wrapped config entrypoint %v cmd %v", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	layers, _ := w.Layers()
	want, _ := os.ReadFile(f.agent)
	if got := fileIn(t, layers[len(layers)-1], strings.TrimPrefix(AgentPath, "/")); got != string(want) {
		t.Fatalf("agent in last layer: %d bytes, want the binary's %d", len(got), len(want))
	}
	writes := f.writes.Load()
	ref2, err := s.Wrap(ctx, img)
	if err != nil || ref2 != ref1 || f.writes.Load() != writes {
		t.Fatalf("second wrap: %s %v, writes %d→%d; want a cache hit", ref2, err, writes, f.writes.Load())
	}
	other := copyAgent(t, "v2")
	ref3, err := f.source(t, other).Wrap(ctx, img)
	if err != nil || ref3 == ref1 {
		t.Fatalf("a new agent binary must make a new wrapped image: %s %v", ref3, err)
	}
}

func fileIn(t *testing.T, l v1.Layer, path string) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return ""
		}
		if h.Name == path {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}

func TestNewRejectsBadMirror(t *testing.T) {
	for _, m := range []string{"127.0.0.1:5000", "ftp://x", "http://"} {
		if _, err := New(Config{TargetRepo: "x/y", Mirrors: map[string]string{"docker.io": m}}); err == nil {
			t.Errorf("mirror %q accepted", m)
		}
	}
}

func TestDynamicAgentBringsItsLoader(t *testing.T) {
	self, err := os.Executable() // this test binary: dynamic where cgo is on
	if err != nil {
		t.Fatal(err)
	}
	interp, libs, err := dynamicDeps(self)
	if err != nil {
		t.Fatal(err)
	}
	al, err := buildAgentLayer(self)
	if err != nil {
		t.Fatal(err)
	}
	if interp == "" {
		if len(al.entrypoint) != 1 || al.entrypoint[0] != AgentPath {
			t.Fatalf("static agent entrypoint %v", al.entrypoint)
		}
		return
	}
	if len(libs) == 0 || al.entrypoint[0] != libDir+"/"+filepath.Base(interp) || al.entrypoint[len(al.entrypoint)-1] != AgentPath {
		t.Fatalf("dynamic agent: libs %v entrypoint %v", libs, al.entrypoint)
	}
	for _, l := range append([]string{interp}, libs...) {
		if fileIn(t, al.layer, strings.TrimPrefix(libDir, "/")+"/"+filepath.Base(l)) == "" {
			t.Fatalf("layer lacks %s", l)
		}
	}
}

func TestStaticAgentGoesInAlone(t *testing.T) {
	interp, _, err := dynamicDeps(testimage.BusyboxPath) // busybox-static
	if err != nil {
		t.Skip(err)
	}
	if interp != "" {
		t.Fatalf("busybox-static has interpreter %q", interp)
	}
	al, err := buildAgentLayer(testimage.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(al.entrypoint) != 1 || al.entrypoint[0] != AgentPath {
		t.Fatalf("entrypoint %v", al.entrypoint)
	}
}

// copyAgent makes a stand-in agent binary: the static busybox, plus suffix
// bytes so two versions differ.
func copyAgent(t *testing.T, suffix string) string {
	t.Helper()
	bin, err := os.ReadFile(testimage.BusyboxPath)
	if err != nil {
		t.Skip(err)
	}
	p := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(p, append(bin, suffix...), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
