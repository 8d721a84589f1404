package engine_test

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// The expectations were printed by Docker 20.10's `docker logs --details`
// (for the same labels, environment, image and command).
func TestLogDetails(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		env    []string
		opts   map[string]string
		want   string
	}{
		{name: "no attributes", want: " "},
		{name: "labels not selected", labels: map[string]string{"a": "1"}, want: " "},
		{
			name:   "labels, regexes and env, escaped and sorted",
			labels: map[string]string{"z": "1 2", "a": "x,y", "lab1": "v", "other": "o"},
			env:    []string{"E=p q", "F=1", "G=2"},
			opts:   map[string]string{"labels": "z,a", "labels-regex": "^lab", "env": "E,NOPE", "env-regex": "^F"},
			want:   "E=p+q,F=1,a=x%2Cy,lab1=v,z=1+2 ",
		},
		{
			name: "tag template",
			opts: map[string]string{"tag": "{{.ImageID}}|{{.ImageName}}|{{.Command}}|{{.DaemonName}}|{{.ID}}"},
			want: "tag=sha256%3A96338%7Cbusybox%7Cecho+hi%7Cdocker%7C88806d6a6b17 ",
		},
		{
			name:   "tag with functions, next to a label",
			labels: map[string]string{"a": "1"},
			opts:   map[string]string{"tag": "{{upper .Name}}|{{json .ContainerLabels}}|{{.FullID}}", "labels": "a"},
			want:   "a=1,tag=TG%7C%7B%22a%22%3A%221%22%7D%7C88806d6a6b17a08f ",
		},
		{name: "tag that does not parse", opts: map[string]string{"tag": "{{"}, want: " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &engine.Container{
				ID: "88806d6a6b17a08f", Name: "Tg", ImageRef: "busybox",
				ImageID:    "sha256:96338d5a3d724bfdc6dc915aba424ce64de4ee9ed6d48f9b8ae4baa6ee83e8b7",
				Config:     &container.Config{Labels: tt.labels, Env: tt.env, Image: "busybox", Cmd: []string{"echo", "hi"}},
				HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: tt.opts}},
			}
			if got := engine.LogDetails(c); got != tt.want {
				t.Fatalf("LogDetails = %q, want %q", got, tt.want)
			}
		})
	}
}
