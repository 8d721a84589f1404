package images

import (
	"bytes"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// wrapped reads a wrapped image back from the target registry.
func wrapped(t *testing.T, ref string) (v1.Image, *v1.ConfigFile) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("read wrapped %s: %v", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return img, cf
}

func TestWrapAddsAgentLayerOnceAndCaches(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	ctx := t.Context()
	img, err := s.Pull(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	ref1, err := s.Wrap(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref1, f.target+"/sockerless/wrapped@sha256:") {
		t.Fatalf("wrapped ref %s, want the target repo pinned by digest", ref1)
	}
	w, cf := wrapped(t, ref1)
	if !slices.Equal(cf.Config.Entrypoint, []string{AgentPath}) || cf.Config.Cmd != nil {
		t.Fatalf("wrapped entrypoint %v cmd %v; want the agent alone", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	layers, err := w.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, _ := f.amd64.Layers()
	if len(layers) != len(baseLayers)+1 {
		t.Fatalf("%d layers, want the base's %d plus one", len(layers), len(baseLayers))
	}
	want, _ := os.ReadFile(f.agent)
	h, got := fileIn(t, layers[len(layers)-1], strings.TrimPrefix(AgentPath, "/"))
	if h == nil || !bytes.Equal(got, want) || h.Mode&0o777 != 0o755 {
		t.Fatalf("agent in last layer: header %+v, %d bytes; want mode 0755 and the binary's %d bytes", h, len(got), len(want))
	}

	t.Run("second wrap is a cache hit", func(t *testing.T) {
		writes := f.writes.Load()
		ref2, err := s.Wrap(ctx, img)
		if err != nil || ref2 != ref1 || f.writes.Load() != writes {
			t.Fatalf("second wrap: %s %v, writes %d→%d; want %s and no write", ref2, err, writes, f.writes.Load(), ref1)
		}
	})
	t.Run("another process with the same agent hits the cache", func(t *testing.T) {
		writes := f.writes.Load()
		ref, err := f.source(t, f.agent).Wrap(ctx, img)
		if err != nil || ref != ref1 || f.writes.Load() != writes {
			t.Fatalf("fresh source: %s %v, writes %d→%d", ref, err, writes, f.writes.Load())
		}
	})
	t.Run("same image from another mirror hits the cache", func(t *testing.T) {
		moved := *img
		_, digest, _ := strings.Cut(img.Source, "@")
		moved.Source = "mirror.invalid/library/busybox@" + digest
		ref, err := s.Wrap(ctx, &moved)
		if err != nil || ref != ref1 {
			t.Fatalf("wrap from another mirror: %s %v; want %s", ref, err, ref1)
		}
	})
	t.Run("new agent binary makes a new image", func(t *testing.T) {
		writes := f.writes.Load()
		ref3, err := f.source(t, copyAgent(t, "v2")).Wrap(ctx, img)
		if err != nil || ref3 == ref1 || f.writes.Load() != writes+1 {
			t.Fatalf("new agent: %s %v, writes %d→%d; want a new image pushed", ref3, err, writes, f.writes.Load())
		}
	})
}

func TestWrapKeepsTheImagesSettings(t *testing.T) {
	f := newFixture(t)
	base, err := testimage.Busybox(testimage.Options{Config: &v1.Config{
		Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo hi"},
		Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/srv", User: "nobody",
		Labels: map[string]string{"team": "x"}, StopSignal: "SIGQUIT",
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.push(t, "me/app:1", base)
	s := f.source(t, f.agent)
	img, err := s.Pull(t.Context(), "me/app:1")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.Wrap(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	_, cf := wrapped(t, ref)
	c := cf.Config
	if !slices.Equal(c.Env, []string{"PATH=/bin", "A=1"}) || c.WorkingDir != "/srv" ||
		!maps.Equal(c.Labels, map[string]string{"team": "x"}) || c.StopSignal != "SIGQUIT" {
		t.Fatalf("wrapped config %+v lost the image's settings", c)
	}
	// The agent runs as root (it serves port 53 and rewrites /etc/hosts);
	// the container's user comes from the original image's config.
	if c.User != "" || img.Config.User != "nobody" {
		t.Fatalf("wrapped user %q (want root), image user %q (want nobody)", c.User, img.Config.User)
	}
	// The agent runs the user's command itself and health checks as
	// probes; the platform must run neither.
	if !slices.Equal(c.Entrypoint, []string{AgentPath}) || c.Cmd != nil || c.Healthcheck != nil {
		t.Fatalf("wrapped entrypoint %v cmd %v healthcheck %v", c.Entrypoint, c.Cmd, c.Healthcheck)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Fatalf("wrapped platform %s/%s", cf.OS, cf.Architecture)
	}
}

func TestWrapFailsClearly(t *testing.T) {
	f := newFixture(t)
	img, err := f.source(t, f.agent).Pull(t.Context(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, agent, want string
	}{
		{"missing agent binary", "/nonexistent/agent", "read agent binary"},
		{"agent that is not ELF", writeFile(t, "not elf"), "not an ELF binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.source(t, tt.agent).Wrap(t.Context(), img)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAgentLayerIsRetriedAfterAFailure(t *testing.T) {
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
	p := t.TempDir() + "/agent"
	s, err := New(Config{TargetRepo: "127.0.0.1:1/w", AgentBinary: p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.agentLayer(); err == nil {
		t.Fatal("agent layer made from a missing binary")
	}
	bin, err := os.ReadFile(testimage.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	a1, err := s.agentLayer()
	if err != nil {
		t.Fatalf("after the binary appeared: %v", err)
	}
	if err := os.WriteFile(p, append(bin, 'x'), 0o755); err != nil {
		t.Fatal(err)
	}
	if a2, err := s.agentLayer(); err != nil || a2 != a1 {
		t.Fatalf("agent layer rebuilt (%v): it is made once per Source", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		target string
		mirror string
	}{
		{"mirror without scheme", "x/y", "127.0.0.1:5000"},
		{"mirror with ftp scheme", "x/y", "ftp://x"},
		{"mirror without host", "x/y", "http://"},
		{"no target repo", "", "http://127.0.0.1:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Config{TargetRepo: tt.target, Mirrors: map[string]string{"docker.io": tt.mirror}}); err == nil {
				t.Fatalf("New accepted target %q mirror %q", tt.target, tt.mirror)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := t.TempDir() + "/file"
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWarmPutsTheAgentLayerInTheTargetRepoAhead(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	ctx := t.Context()
	if err := s.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	warmed, err := s.agentLayer()
	if err != nil {
		t.Fatal(err)
	}
	d, err := warmed.layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Head("http://" + f.target + "/v2/sockerless/wrapped/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("agent layer %s in the target repo after Warm: HEAD %d", d, resp.StatusCode)
	}
	// What any process wraps with this agent ends with that layer.
	img, err := s.Pull(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := f.source(t, f.agent).Wrap(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := wrapped(t, ref)
	layers, err := w.Layers()
	if err != nil {
		t.Fatal(err)
	}
	agentDigest, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d != agentDigest {
		t.Fatalf("warmed agent layer %s, wrapped image's %s", d, agentDigest)
	}

	t.Run("without the agent binary it says so", func(t *testing.T) {
		bad := f.source(t, t.TempDir()+"/no-agent")
		if err := bad.Warm(ctx); err == nil || !strings.Contains(err.Error(), "agent") {
			t.Fatalf("Warm without an agent binary: %v", err)
		}
	})
}
