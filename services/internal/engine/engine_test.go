package engine

import (
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestMergeConfigFillsImageDefaultsLikeDocker(t *testing.T) {
	img := &container.Config{
		Entrypoint: []string{"/entry"},
		Cmd:        []string{"default"},
		Env:        []string{"PATH=/img/bin", "A=img", "B=img"},
		WorkingDir: "/work",
		User:       "app",
		Labels:     map[string]string{"from": "image", "both": "image"},
		StopSignal: "SIGQUIT",
	}
	tests := []struct {
		name string
		in   container.Config
		want container.Config
	}{
		{
			name: "nothing given takes image entrypoint, cmd, workdir, user",
			in:   container.Config{Image: "x"},
			want: container.Config{Image: "x", Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/img/bin", "A=img", "B=img"}, WorkingDir: "/work", User: "app", StopSignal: "SIGQUIT", Labels: map[string]string{"from": "image", "both": "image"}},
		},
		{
			name: "cmd given keeps image entrypoint",
			in:   container.Config{Image: "x", Cmd: []string{"mine"}},
			want: container.Config{Image: "x", Entrypoint: []string{"/entry"}, Cmd: []string{"mine"}, Env: []string{"PATH=/img/bin", "A=img", "B=img"}, WorkingDir: "/work", User: "app", StopSignal: "SIGQUIT", Labels: map[string]string{"from": "image", "both": "image"}},
		},
		{
			name: "entrypoint given drops image cmd",
			in:   container.Config{Image: "x", Entrypoint: []string{"/mine"}},
			want: container.Config{Image: "x", Entrypoint: []string{"/mine"}, Env: []string{"PATH=/img/bin", "A=img", "B=img"}, WorkingDir: "/work", User: "app", StopSignal: "SIGQUIT", Labels: map[string]string{"from": "image", "both": "image"}},
		},
		{
			name: "the user's env comes first then the image's not overridden, labels merge, workdir and user win",
			in:   container.Config{Image: "x", Env: []string{"A=mine", "C=new"}, Labels: map[string]string{"both": "mine"}, WorkingDir: "/tmp", User: "nobody"},
			want: container.Config{Image: "x", Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"A=mine", "C=new", "PATH=/img/bin", "B=img"}, WorkingDir: "/tmp", User: "nobody", StopSignal: "SIGQUIT", Labels: map[string]string{"from": "image", "both": "mine"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			got := mergeConfig(&in, img)
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestMergeEnvAddsDefaultPath(t *testing.T) {
	got := mergeEnv(nil, []string{"A=1"})
	if !reflect.DeepEqual(got, []string{"A=1", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
		t.Fatalf("got %v", got)
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		invalid bool
	}{
		{"SIGTERM", 15, false},
		{"TERM", 15, false},
		{"usr1", 10, false},
		{"9", 9, false},
		{"SIGNOPE", 0, true},
		{"0", 0, true},
		{"65", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if tt.invalid {
				if KindOf(err) != KindInvalid {
					t.Fatalf("err = %v, want KindInvalid", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestFiltersMatch(t *testing.T) {
	c := &Container{ID: "abcdef0123", Name: "web", ImageID: "sha256:img", State: State{Status: StatusExited, ExitCode: 3},
		Config: &container.Config{Labels: map[string]string{"team": "x", "tier": "db"}}}
	tests := []struct {
		name string
		f    Filters
		want bool
	}{
		{"no filters match", Filters{}, true},
		{"label key present", Filters{"label": {"team"}}, true},
		{"label key=value", Filters{"label": {"team=x"}}, true},
		{"label value differs", Filters{"label": {"team=y"}}, false},
		{"all labels must hold", Filters{"label": {"team=x", "tier=web"}}, false},
		{"id prefix", Filters{"id": {"abc"}}, true},
		{"name regexp anchored", Filters{"name": {"^web$"}}, true},
		{"name mismatch", Filters{"name": {"^db$"}}, false},
		{"status alternatives", Filters{"status": {"running", "exited"}}, true},
		{"exited code", Filters{"exited": {"3"}}, true},
		{"exited other code", Filters{"exited": {"0"}}, false},
		{"keys combine", Filters{"status": {"exited"}, "label": {"team=y"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.match(c, nil, compileNames(tt.f["name"])); got != tt.want {
				t.Fatalf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitLinesKeepsNewlinesAndTime(t *testing.T) {
	ts := time.Unix(100, 0)
	got := splitLines(LogEntry{Seq: 4, Stream: Stderr, Time: ts, Data: []byte("a\nbb\nccc")})
	want := []string{"a\n", "bb\n", "ccc"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines", len(got))
	}
	for i, l := range got {
		if string(l.Data) != want[i] || l.Stream != Stderr || !l.Time.Equal(ts) {
			t.Fatalf("line %d = %+v", i, l)
		}
	}
}

func TestNormalizeRef(t *testing.T) {
	tests := map[string]string{
		"busybox":                   "busybox:latest",
		"busybox:1.36":              "busybox:1.36",
		"docker.io/library/busybox": "busybox:latest",
		"127.0.0.1:5000/team/app":   "127.0.0.1:5000/team/app:latest",
		"Not/A:Ref!":                "",
	}
	for in, want := range tests {
		if got := normalizeRef(in); got != want {
			t.Errorf("normalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgentIDRoundTrip(t *testing.T) {
	c := &Container{Namespace: "team-a", ID: "0123abcd"}
	ns, id, ok := splitAgentID(agentID(c))
	if !ok || ns != "team-a" || id != "0123abcd" {
		t.Fatalf("split = %q %q %v", ns, id, ok)
	}
	for _, bad := range []string{"", "noslash", "/id", "ns/"} {
		if _, _, ok := splitAgentID(bad); ok {
			t.Errorf("splitAgentID(%q) accepted", bad)
		}
	}
}
