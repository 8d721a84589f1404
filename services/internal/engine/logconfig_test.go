package engine

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

// A container whose log options docker's json-file driver refuses does not
// start, with docker's message (printed by Docker 20.10, but for the type
// name a failing template names).
func TestCheckLogConfig(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]string
		want string // "" means accepted
	}{
		{name: "no options"},
		{name: "good options", opts: map[string]string{"labels": "a", "labels-regex": "^l", "env-regex": "^E", "tag": "{{.Name}}/{{.ID}}"}},
		{name: "bad labels regex", opts: map[string]string{"labels-regex": "("}, want: "failed to initialize logging driver: error parsing regexp: missing closing ): `(`"},
		{name: "bad env regex", opts: map[string]string{"env-regex": "("}, want: "failed to initialize logging driver: error parsing regexp: missing closing ): `(`"},
		{name: "tag does not parse", opts: map[string]string{"tag": "{{"}, want: "failed to initialize logging driver: template: log-tag:1: unclosed action"},
		{name: "tag does not run", opts: map[string]string{"tag": "{{.Nope}}"}, want: `failed to initialize logging driver: template: log-tag:1:2: executing "log-tag" at <.Nope>: can't evaluate field Nope in type *engine.LogInfo`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Container{ID: "0123456789abcdef", Name: "c", Config: &container.Config{Cmd: []string{"true"}},
				HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: tt.opts}}}
			err := checkLogConfig(c)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkLogConfig: %v, want none", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want || KindOf(err) != KindInvalid):
				t.Fatalf("checkLogConfig: %v, want %q (invalid)", err, tt.want)
			}
		})
	}
}
