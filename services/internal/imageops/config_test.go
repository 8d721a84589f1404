package imageops

import (
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestApplyChangesAsDockerReadsThem(t *testing.T) {
	port := func(p string) network.Port { pp, _ := network.ParsePort(p); return pp }
	cases := []struct {
		name    string
		changes []string
		want    container.Config
		err     string
	}{
		{"cmd in exec form", []string{`CMD ["echo", "hi"]`}, container.Config{Cmd: []string{"echo", "hi"}}, ""},
		{"cmd in shell form", []string{`cmd echo hi`}, container.Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}}, ""},
		{"entrypoint, user, workdir, stop signal", []string{`ENTRYPOINT ["/app"]`, "USER nobody", "WORKDIR /srv", "WORKDIR data", "STOPSIGNAL SIGINT"},
			container.Config{Entrypoint: []string{"/app"}, User: "nobody", WorkingDir: "/srv/data", StopSignal: "SIGINT"}, ""},
		{"env in both forms, later wins", []string{`ENV A=1 B="two words"`, "ENV C 3 4", "ENV A=5"},
			container.Config{Env: []string{"A=5", "C=3 4", "B=two words"}}, ""},
		{"expose defaults to tcp", []string{"EXPOSE 8000 53/udp"},
			container.Config{ExposedPorts: network.PortSet{port("8000/tcp"): {}, port("53/udp"): {}}}, ""},
		{"labels and volumes", []string{`LABEL a=b "c d"=e`, `VOLUME ["/data"]`, "VOLUME /cache /logs"},
			container.Config{Labels: map[string]string{"a": "b", "c d": "e"}, Volumes: map[string]struct{}{"/data": {}, "/cache": {}, "/logs": {}}}, ""},
		{"healthcheck with options", []string{"HEALTHCHECK --interval=5s --retries=2 CMD true"},
			container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5 * time.Second, Retries: 2}}, ""},
		{"an instruction docker refuses", []string{"RUN echo"}, container.Config{}, "RUN is not a valid change command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got container.Config
			err := applyChanges(&got, c.changes)
			if c.err != "" {
				if err == nil || err.Error() != c.err || engine.KindOf(err) != engine.KindInvalid {
					t.Fatalf("error %v, want %q (invalid)", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, c.want)
			}
		})
	}
}

func TestMergeConfigCompletesTheRequestWithTheContainers(t *testing.T) {
	base := &container.Config{Env: []string{"PATH=/bin", "A=0"}, Cmd: []string{"sh"}, User: "nobody",
		Labels: map[string]string{"x": "1", "y": "1"}, WorkingDir: "/w"}
	got := mergeConfig(&container.Config{Env: []string{"A=1"}, Labels: map[string]string{"y": "2"}}, base)
	want := &container.Config{Env: []string{"A=1", "PATH=/bin"}, Cmd: []string{"sh"}, User: "nobody",
		Labels: map[string]string{"x": "1", "y": "2"}, WorkingDir: "/w"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged %+v\nwant %+v", got, want)
	}
	if got := mergeConfig(&container.Config{Entrypoint: []string{"/e"}}, base); got.Cmd != nil {
		t.Fatalf("a request's entrypoint keeps the container's command: %v", got.Cmd)
	}
}

func TestImageName(t *testing.T) {
	for _, c := range []struct{ repo, tag, want, err string }{
		{"", "", "", ""},
		{"me/app", "", "me/app:latest", ""},
		{"me/app", "v1", "me/app:v1", ""},
		{"docker.io/library/app", "v1", "app:v1", ""},
		{"Bad Name", "", "", "invalid reference format: Bad Name"},
		{"me/app:v1", "v2", "", "invalid reference format: me/app:v1:v2"},
	} {
		got, err := imageName(c.repo, c.tag)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("imageName(%q, %q) = %q, %v; want %q, %q", c.repo, c.tag, got, err, c.want, c.err)
		}
	}
}

func TestUniqueBytesCountsLayersNoKeptImageShares(t *testing.T) {
	l := func(id string, n int64) engine.ImageLayer { return engine.ImageLayer{DiffID: id, Size: n} }
	base := &engine.Image{Layers: []engine.ImageLayer{l("a", 100)}}
	child := &engine.Image{Layers: []engine.ImageLayer{l("a", 100), l("b", 10)}}
	other := &engine.Image{Layers: []engine.ImageLayer{l("c", 7)}}
	if n := uniqueBytes([]*engine.Image{child}, []*engine.Image{base}); n != 10 {
		t.Errorf("child without base: %d, want 10", n)
	}
	if n := uniqueBytes([]*engine.Image{child, base, other}, nil); n != 117 {
		t.Errorf("all: %d, want 117 (shared layer once)", n)
	}
}
