package engine_test

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// The expectations were printed by Docker 20.10's `docker logs --details`.
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &engine.Container{
				Config:     &container.Config{Labels: tt.labels, Env: tt.env},
				HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: tt.opts}},
			}
			if got := engine.LogDetails(c); got != tt.want {
				t.Fatalf("LogDetails = %q, want %q", got, tt.want)
			}
		})
	}
}
