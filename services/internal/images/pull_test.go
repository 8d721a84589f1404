package images

import (
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

func TestPullResolvesThroughMirror(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	bbManifest := digestOf(t, f.amd64)
	tests := []struct {
		name, ref   string
		tags        []string
		digest      string // the RepoDigest
		source      string // the pinned reference Wrap reads
		wantID      string
		wantCreated bool
	}{
		{"short name gets library and latest", "busybox",
			[]string{"busybox:latest"}, "busybox@" + bbManifest, f.mirror + "/library/busybox@" + bbManifest, configDigest(t, f.amd64), true},
		{"full docker.io name is shown short", "docker.io/library/busybox:latest",
			[]string{"busybox:latest"}, "busybox@" + bbManifest, f.mirror + "/library/busybox@" + bbManifest, configDigest(t, f.amd64), true},
		{"index.docker.io is docker hub", "index.docker.io/library/busybox",
			[]string{"busybox:latest"}, "busybox@" + bbManifest, f.mirror + "/library/busybox@" + bbManifest, configDigest(t, f.amd64), true},
		{"pinned by digest has no tag", "busybox@" + bbManifest,
			nil, "busybox@" + bbManifest, f.mirror + "/library/busybox@" + bbManifest, configDigest(t, f.amd64), true},
		{"index resolves to linux/amd64", "team/multi:v1",
			[]string{"team/multi:v1"}, "team/multi@" + digestOf(t, f.index), f.mirror + "/team/multi@" + bbManifest, configDigest(t, f.amd64), true},
		{"host:port keeps its host, not mirrored", f.mirror + "/library/busybox:latest",
			[]string{f.mirror + "/library/busybox:latest"}, f.mirror + "/library/busybox@" + bbManifest, f.mirror + "/library/busybox@" + bbManifest, configDigest(t, f.amd64), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := s.Pull(t.Context(), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(img.RepoTags, tt.tags) || !slices.Equal(img.RepoDigests, []string{tt.digest}) {
				t.Fatalf("tags %v digests %v; want %v and %s", img.RepoTags, img.RepoDigests, tt.tags, tt.digest)
			}
			if img.ID != tt.wantID || img.Source != tt.source {
				t.Fatalf("ID %s source %s; want %s and %s", img.ID, img.Source, tt.wantID, tt.source)
			}
			if img.OS != "linux" || img.Arch != "amd64" || img.Size <= 0 || img.Created.IsZero() {
				t.Fatalf("image %+v", img)
			}
			if img.Config == nil || !slices.Equal(img.Config.Cmd, []string{"sh"}) || len(img.Config.Env) != 1 {
				t.Fatalf("config %+v", img.Config)
			}
		})
	}
}

func TestPullConvertsConfig(t *testing.T) {
	f := newFixture(t)
	bb, err := testimage.Busybox(testimage.Options{Config: &v1.Config{
		Entrypoint:   []string{"/bin/sh", "-c"},
		Cmd:          []string{"echo hi"},
		Env:          []string{"PATH=/bin", "A=1"},
		WorkingDir:   "/srv",
		User:         "nobody",
		Labels:       map[string]string{"team": "x"},
		StopSignal:   "SIGQUIT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Shell:        []string{"/bin/sh", "-c"},
		Healthcheck:  &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: 3 * time.Second, Retries: 4},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.push(t, "me/custom:1", bb)
	img, err := f.source(t, f.agent).Pull(t.Context(), "me/custom:1")
	if err != nil {
		t.Fatal(err)
	}
	want := &container.Config{
		Entrypoint:   []string{"/bin/sh", "-c"},
		Cmd:          []string{"echo hi"},
		Env:          []string{"PATH=/bin", "A=1"},
		WorkingDir:   "/srv",
		User:         "nobody",
		Labels:       map[string]string{"team": "x"},
		StopSignal:   "SIGQUIT",
		ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Shell:        []string{"/bin/sh", "-c"},
		Healthcheck:  &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: 3 * time.Second, Retries: 4},
	}
	if !reflect.DeepEqual(img.Config, want) {
		t.Fatalf("config\n got %+v\nwant %+v", img.Config, want)
	}
}

func TestConvertConfigReadsStartInterval(t *testing.T) {
	raw := []byte(`{"config":{"Healthcheck":{"Test":["CMD","true"],"StartInterval":5000000000}}}`)
	got := convertConfig(v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}}, raw)
	if got.Healthcheck == nil || got.Healthcheck.StartInterval != 5*time.Second {
		t.Fatalf("healthcheck %+v, want StartInterval 5s", got.Healthcheck)
	}
	if got := convertConfig(v1.Config{}, raw); got.Healthcheck != nil {
		t.Fatalf("healthcheck %+v from a config without one", got.Healthcheck)
	}
}

func TestPullErrors(t *testing.T) {
	f := newFixture(t)
	down, err := New(Config{Mirrors: map[string]string{"docker.io": "http://127.0.0.1:1"}, TargetRepo: f.target + "/w", Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     *Source
		ref     string
		kind    engine.Kind
		message string
	}{
		{"missing repository is docker's pull access denied", f.source(t, f.agent), "nosuch",
			engine.KindNotFound, "pull access denied for nosuch, repository does not exist or may require 'docker login'"},
		{"missing repository with a namespace keeps it", f.source(t, f.agent), "me/nosuch:1",
			engine.KindNotFound, "pull access denied for me/nosuch, repository does not exist or may require 'docker login'"},
		{"missing tag is docker's manifest not found", f.source(t, f.agent), "busybox:nosuch",
			engine.KindNotFound, "manifest for busybox:nosuch not found: manifest unknown"},
		{"missing digest is docker's manifest not found", f.source(t, f.agent), "busybox@sha256:" + strings.Repeat("0", 64),
			engine.KindNotFound, "manifest for busybox@sha256:0000"},
		{"bad reference is invalid", f.source(t, f.agent), "Bad Name!",
			engine.KindInvalid, "invalid reference format"},
		{"unreachable registry is unavailable", down, "busybox",
			engine.KindUnavailable, "cannot pull busybox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.src.Pull(t.Context(), tt.ref)
			var e *engine.Error
			if !errors.As(err, &e) || e.Kind != tt.kind || !strings.HasPrefix(e.Message, tt.message) {
				t.Fatalf("err = %v (kind %v); want kind %v, message %q", err, engine.KindOf(err), tt.kind, tt.message)
			}
		})
	}
}

func TestPullErrorWording(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		err     error
		kind    engine.Kind
		message string
	}{
		{"hub's 401 for a missing repository is pull access denied", "nosuch",
			&transport.Error{StatusCode: http.StatusUnauthorized, Errors: []transport.Diagnostic{{Code: transport.UnauthorizedErrorCode}}},
			engine.KindNotFound, "pull access denied for nosuch, repository does not exist or may require 'docker login'"},
		{"registry's 404 is pull access denied", "me/app:1",
			&transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}},
			engine.KindNotFound, "pull access denied for me/app,"},
		{"a web server's bare 404 is no registry", "me/app:1",
			&transport.Error{StatusCode: http.StatusNotFound},
			engine.KindUnavailable, "cannot pull me/app:1: registry index.docker.io did not answer as a registry"},
		{"manifest unknown names the tag, latest made explicit", "busybox",
			&transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}},
			engine.KindNotFound, "manifest for busybox:latest not found: manifest unknown: manifest unknown"},
		{"server error is unavailable", "busybox",
			&transport.Error{StatusCode: http.StatusBadGateway},
			engine.KindUnavailable, "cannot pull busybox"},
		{"network error is unavailable", "busybox",
			errors.New("dial tcp: connection refused"),
			engine.KindUnavailable, "cannot pull busybox: registry index.docker.io did not answer as a registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, perr := name.ParseReference(tt.ref)
			if perr != nil {
				t.Fatal(perr)
			}
			err := pullError(ref, tt.err)
			var e *engine.Error
			if !errors.As(err, &e) || e.Kind != tt.kind || !strings.HasPrefix(e.Message, tt.message) || !errors.Is(err, tt.err) {
				t.Fatalf("err = %v; want kind %v, message %q, wrapping the cause", err, tt.kind, tt.message)
			}
		})
	}
}
