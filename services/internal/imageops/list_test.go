package imageops

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestFilter(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	img := func(id string, age int, labels map[string]string, tags ...string) *engine.Image {
		return &engine.Image{ID: id, Created: t0.Add(time.Duration(age) * time.Hour), RepoTags: tags,
			Config: &container.Config{}, RepoDigests: digestsOf(tags)}
	}
	imgs := []*engine.Image{
		img("a", 1, nil, "alpine:latest", "me/tagged:some-tag", "busybox:latest"),
		img("b", 2, nil, "me/app:v1", "me/app:v2"),
		img("c", 3, nil),
	}
	imgs[2].Config.Labels = map[string]string{"team": "ci"}
	find := func(ref string) (*engine.Image, error) {
		for _, i := range imgs {
			if i.ID == ref || slices.Contains(i.RepoTags, ref) {
				return i, nil
			}
		}
		return nil, engine.Errorf(engine.KindNotFound, "No such image: %s", ref)
	}
	tests := []struct {
		name string
		f    engine.Filters
		want string // id:tags;…
		kind engine.Kind
	}{
		{"no filter lists all with every name", engine.Filters{}, "a:alpine:latest,me/tagged:some-tag,busybox:latest;b:me/app:v1,me/app:v2;c:", 0},
		{"a repository shows its names only", engine.Filters{"reference": {"me/tagged"}}, "a:me/tagged:some-tag", 0},
		{"a familiar name matches its tag", engine.Filters{"reference": {"alpine"}}, "a:alpine:latest", 0},
		{"a pattern", engine.Filters{"reference": {"me/*:v1"}}, "b:me/app:v1", 0},
		{"two patterns", engine.Filters{"reference": {"busybox", "me/app"}}, "a:busybox:latest;b:me/app:v1,me/app:v2", 0},
		{"a removed name matches nothing", engine.Filters{"reference": {"gone"}}, "", 0},
		{"dangling", engine.Filters{"dangling": {"true"}}, "c:", 0},
		{"not dangling", engine.Filters{"dangling": {"false"}}, "a:alpine:latest,me/tagged:some-tag,busybox:latest;b:me/app:v1,me/app:v2", 0},
		{"label", engine.Filters{"label": {"team=ci"}}, "c:", 0},
		{"before", engine.Filters{"before": {"me/app:v1"}}, "a:alpine:latest,me/tagged:some-tag,busybox:latest", 0},
		{"since", engine.Filters{"since": {"a"}}, "b:me/app:v1,me/app:v2;c:", 0},
		{"since an unknown image", engine.Filters{"since": {"nope"}}, "", engine.KindNotFound},
		{"bad dangling", engine.Filters{"dangling": {"maybe"}}, "", engine.KindInvalid},
		{"unknown filter", engine.Filters{"colour": {"red"}}, "", engine.KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Filter(imgs, tc.f, find)
			if tc.kind != 0 {
				var ee *engine.Error
				if !errors.As(err, &ee) || ee.Kind != tc.kind {
					t.Fatalf("err = %v, want kind %v", err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, i := range got {
				parts = append(parts, i.ID+":"+strings.Join(i.RepoTags, ","))
			}
			if s := strings.Join(parts, ";"); s != tc.want {
				t.Fatalf("got %q, want %q", s, tc.want)
			}
		})
	}
	if len(imgs[0].RepoTags) != 3 {
		t.Fatal("Filter changed the images it was given")
	}
}

func digestsOf(tags []string) []string {
	var out []string
	for _, t := range tags {
		out = append(out, strings.Split(t, ":")[0]+"@sha256:"+strings.Repeat("0", 64))
	}
	return out
}
