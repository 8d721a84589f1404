package imageops

import (
	"github.com/distribution/reference"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// listFilters are docker images' filters.
var listFilters = map[string]bool{"reference": true, "dangling": true, "label": true, "before": true, "since": true}

// Filter applies docker images' filters to imgs: reference (a name or a
// pattern, "alpine", "me/*:v1"), dangling, label, before and since (an
// image, by reference or ID, whose creation time bounds the list). With a
// reference filter an image shows only the names that match it, as
// dockerd lists them; find resolves before and since.
func Filter(imgs []*engine.Image, f engine.Filters, find func(ref string) (*engine.Image, error)) ([]*engine.Image, error) {
	for k := range f {
		if !listFilters[k] {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter '%s'", k)
		}
	}
	var dangling *bool
	for _, v := range f["dangling"] {
		b, ok := map[string]bool{"true": true, "1": true, "false": false, "0": false}[v]
		if !ok {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter 'dangling=%s'", v)
		}
		dangling = &b
	}
	bound := func(key string) (*engine.Image, error) {
		var out *engine.Image
		for _, ref := range f[key] {
			img, err := find(ref)
			if err != nil {
				return nil, err
			}
			out = img
		}
		return out, nil
	}
	before, err := bound("before")
	if err != nil {
		return nil, err
	}
	since, err := bound("since")
	if err != nil {
		return nil, err
	}
	out := make([]*engine.Image, 0, len(imgs))
	for _, img := range imgs {
		if dangling != nil && *dangling != (len(img.RepoTags) == 0) {
			continue
		}
		if before != nil && !img.Created.Before(before.Created) || since != nil && !img.Created.After(since.Created) {
			continue
		}
		var labels map[string]string
		if img.Config != nil {
			labels = img.Config.Labels
		}
		if !engine.MatchLabels(f["label"], labels, true) {
			continue
		}
		if pats := f["reference"]; len(pats) > 0 {
			shown := *img
			shown.RepoTags, shown.RepoDigests = matching(img.RepoTags, pats), matching(img.RepoDigests, pats)
			if len(shown.RepoTags)+len(shown.RepoDigests) == 0 {
				continue
			}
			img = &shown
		}
		out = append(out, img)
	}
	return out, nil
}

// matching returns the refs that match one of the patterns (docker's
// reference.FamiliarMatch: the whole familiar name, or the repository).
func matching(refs, patterns []string) []string {
	var out []string
	for _, r := range refs {
		named, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			continue
		}
		for _, p := range patterns {
			if ok, _ := reference.FamiliarMatch(p, named); ok {
				out = append(out, r)
				break
			}
		}
	}
	return out
}
