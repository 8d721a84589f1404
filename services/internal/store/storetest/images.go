package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

func imageCases() []testCase {
	return []testCase{
		{"get image by id, hex, prefix, tag or digest", testGetImage},
		{"a tag moves to the image that claims it", testTagMoves},
		{"a second put of an image adds its new tags", testTagsAccumulate},
		{"delete image frees its refs", testDeleteImage},
		{"untag takes one name; the image and its other names stay", testUntagImage},
	}
}

func imageID(hexDigit string) string { return "sha256:" + strings.Repeat(hexDigit, 64) }

func putImage(t *testing.T, s engine.Store, img *engine.Image) {
	t.Helper()
	if err := s.PutImage(t.Context(), img); err != nil {
		t.Fatalf("put %s: %v", img.ID, err)
	}
}

func testGetImage(t *testing.T, s engine.Store) {
	id1 := imageID("1")
	id2 := "sha256:12" + strings.Repeat("0", 62)
	putImage(t, s, &engine.Image{ID: id1, RepoTags: []string{"busybox:latest"}, RepoDigests: []string{"busybox@sha256:" + strings.Repeat("a", 64)}})
	putImage(t, s, &engine.Image{ID: id2, RepoTags: []string{"me/app:v1"}})
	tests := []struct {
		name, ref, want string
		err             *engine.Error
	}{
		{"full id finds it", id1, id1, nil},
		{"bare hex finds it", id1[7:], id1, nil},
		{"unique prefix finds it", "111", id1, nil},
		{"prefixed unique prefix finds it", "sha256:120", id2, nil},
		{"repo tag finds it", "busybox:latest", id1, nil},
		{"repo tag with a slash finds it", "me/app:v1", id2, nil},
		{"repo digest finds it", "busybox@sha256:" + strings.Repeat("a", 64), id1, nil},
		{"shared prefix is ambiguous", "1", "", engine.ErrAmbiguous},
		{"unknown tag is not found", "busybox:1.0", "", engine.ErrNotFound},
		{"unknown hex is not found", "abc", "", engine.ErrNotFound},
		{"non-hex is not found", "nothex!", "", engine.ErrNotFound},
		{"empty is not found", "", "", engine.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := s.GetImage(t.Context(), tt.ref)
			wantErr(t, err, tt.err)
			if tt.err == nil && (img == nil || img.ID != tt.want) {
				t.Fatalf("GetImage(%q) = %+v; want %s", tt.ref, img, tt.want)
			}
		})
	}
}

func testTagMoves(t *testing.T, s engine.Store) {
	id1, id2 := imageID("1"), imageID("2")
	putImage(t, s, &engine.Image{ID: id1, RepoTags: []string{"busybox:latest", "busybox:1.36"}})
	putImage(t, s, &engine.Image{ID: id2, RepoTags: []string{"busybox:latest"}})
	if img, err := s.GetImage(t.Context(), "busybox:latest"); err != nil || img.ID != id2 {
		t.Fatalf("tag did not move: %+v, %v", img, err)
	}
	old, err := s.GetImage(t.Context(), id1)
	if err != nil || !slices.Equal(old.RepoTags, []string{"busybox:1.36"}) {
		t.Fatalf("old image tags = %+v, %v; want only busybox:1.36", old, err)
	}
	if img, err := s.GetImage(t.Context(), "busybox:1.36"); err != nil || img.ID != id1 {
		t.Fatalf("untouched tag: %+v, %v", img, err)
	}
}

func testTagsAccumulate(t *testing.T, s engine.Store) {
	id := imageID("2")
	putImage(t, s, &engine.Image{ID: id, RepoTags: []string{"busybox:latest"}, Created: time.Unix(1, 0).UTC()})
	putImage(t, s, &engine.Image{ID: id, RepoTags: []string{"busybox:1.36"}, Created: time.Unix(1, 0).UTC()})
	img, err := s.GetImage(t.Context(), "busybox:latest")
	if err != nil || img.ID != id {
		t.Fatalf("first tag lost: %+v, %v", img, err)
	}
	tags := slices.Sorted(slices.Values(img.RepoTags))
	if !slices.Equal(tags, []string{"busybox:1.36", "busybox:latest"}) {
		t.Fatalf("tags = %v, want both", img.RepoTags)
	}
	if imgs, err := s.ListImages(t.Context()); err != nil || len(imgs) != 1 {
		t.Fatalf("list = %v, %v; want one image", imgs, err)
	}
}

func testDeleteImage(t *testing.T, s engine.Store) {
	id1, id2 := imageID("1"), imageID("2")
	putImage(t, s, &engine.Image{ID: id1, RepoTags: []string{"a:1"}, RepoDigests: []string{"a@sha256:" + strings.Repeat("b", 64)}})
	putImage(t, s, &engine.Image{ID: id2, RepoTags: []string{"b:1"}})
	wantErr(t, s.DeleteImage(t.Context(), id1), nil)
	wantErr(t, s.DeleteImage(t.Context(), id1), engine.ErrNotFound)
	for _, ref := range []string{id1, "a:1", "a@sha256:" + strings.Repeat("b", 64)} {
		_, err := s.GetImage(t.Context(), ref)
		wantErr(t, err, engine.ErrNotFound)
	}
	if imgs, err := s.ListImages(t.Context()); err != nil || len(imgs) != 1 || imgs[0].ID != id2 {
		t.Fatalf("list after delete = %v, %v", imgs, err)
	}
	// The freed tag can name a new image.
	putImage(t, s, &engine.Image{ID: imageID("3"), RepoTags: []string{"a:1"}})
	if img, err := s.GetImage(t.Context(), "a:1"); err != nil || img.ID != imageID("3") {
		t.Fatalf("reused tag: %+v, %v", img, err)
	}
}

func testUntagImage(t *testing.T, s engine.Store) {
	ctx := t.Context()
	id := imageID("3")
	putImage(t, s, &engine.Image{ID: id, RepoTags: []string{"alpine:latest", "me/tagged:some-tag"}})
	if err := s.UntagImage(ctx, id, "me/tagged:some-tag"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetImage(ctx, "me/tagged:some-tag"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the removed tag still finds an image: %v", err)
	}
	// A later put of the image (another tag) does not bring it back.
	putImage(t, s, &engine.Image{ID: id, RepoTags: []string{"alpine:3"}})
	img, err := s.GetImage(ctx, "alpine:latest")
	if err != nil || img.ID != id || !slices.Equal(img.RepoTags, []string{"alpine:latest", "alpine:3"}) {
		t.Fatalf("after untag and put: %+v, %v; want tags alpine:latest, alpine:3", img, err)
	}
	wantErr(t, s.UntagImage(ctx, imageID("4"), "alpine:latest"), engine.ErrNotFound)
}
