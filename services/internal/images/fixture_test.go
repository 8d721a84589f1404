package images

import (
	"archive/tar"
	"io"
	"log"
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
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// fixture is a "docker.io" mirror and a target registry, both in-process.
type fixture struct {
	mirror, target string        // host:port
	writes         *atomic.Int64 // manifest PUTs on the target
	agent          string        // a stand-in agent binary
	amd64, arm64   v1.Image      // the platforms of team/multi:v1
	index          v1.ImageIndex // team/multi:v1
}

// newFixture serves library/busybox:latest (an image) and team/multi:v1
// (an index of linux/arm64 and linux/amd64) on the mirror.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
	m := httptest.NewServer(registry.New(registry.Logger(discard())))
	t.Cleanup(m.Close)
	writes := &atomic.Int64{}
	reg := registry.New(registry.Logger(discard()))
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
	f.amd64 = bb
	cf, err := bb.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	if f.arm64, err = mutate.ConfigFile(bb, cf); err != nil {
		t.Fatal(err)
	}
	f.index = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: f.arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: f.amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref, err := name.ParseReference(f.mirror+"/team/multi:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, f.index, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	f.agent = copyAgent(t, "")
	return f
}

func discard() *log.Logger { return log.New(io.Discard, "", 0) }

func (f *fixture) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(f.mirror+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
}

// source is a Source on the fixture with agent as the agent binary.
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

// fileIn returns the header and content of path in layer l (nil if absent).
func fileIn(t *testing.T, l v1.Layer, path string) (*tar.Header, []byte) {
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
			return nil, nil
		}
		if h.Name == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return h, b
		}
	}
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
