package imageops

import (
	"context"
	"io"
	"slices"
	"time"

	"github.com/distribution/reference"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Save is docker save of names (repositories, tags, IDs): a repository
// name alone saves every tag of it, as docker does. Every name is
// resolved before begin is called and the first byte written.
func (s *Service) Save(ctx context.Context, names []string, begin func(), w io.Writer) error {
	var items []SaveItem
	add := func(img *engine.Image, tag string) {
		for i := range items {
			if items[i].Image.ID == img.ID {
				if tag != "" && !slices.Contains(items[i].Tags, tag) {
					items[i].Tags = append(items[i].Tags, tag)
				}
				return
			}
		}
		it := SaveItem{Image: img}
		if tag != "" {
			it.Tags = []string{tag}
		}
		items = append(items, it)
	}
	all, err := s.cfg.Engine.Images(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if repo := repositoryOnly(n); repo != "" {
			found := false
			for _, img := range all {
				for _, t := range img.RepoTags {
					if r, _, ok := repoAndTag(t); ok && r == repo {
						add(img, t)
						found = true
					}
				}
			}
			if found {
				continue
			}
		}
		img, err := s.cfg.Engine.Image(ctx, n)
		if err != nil {
			if engine.KindOf(err) == engine.KindNotFound {
				return engine.Errorf(engine.KindNotFound, "No such image: %s", n)
			}
			return err
		}
		add(img, FamiliarTag(n))
	}
	begin()
	return s.cfg.Registry.Save(ctx, &lazyWriter{w: w}, items)
}

// repositoryOnly is the familiar repository a name without tag or digest
// names ("" otherwise).
func repositoryOnly(n string) string {
	named, err := reference.ParseNormalizedNamed(n)
	if err != nil || !reference.IsNameOnly(named) {
		return ""
	}
	return reference.FamiliarName(named)
}

// FamiliarTag is docker's short form of a tagged name ("busybox:latest"),
// "" for an ID, a digest or something else.
func FamiliarTag(n string) string {
	named, err := reference.ParseNormalizedNamed(n)
	if err != nil {
		return ""
	}
	if _, ok := named.(reference.Tagged); !ok {
		return ""
	}
	return reference.FamiliarString(named)
}

// Load is docker load: each image of the archive is pushed where
// functions run images from and recorded with the archive's names.
// loaded is called for each, in the archive's order.
func (s *Service) Load(ctx context.Context, r io.Reader, progress Progress, loaded func(img *engine.Image)) error {
	imgs, err := s.cfg.Registry.Load(ctx, r, progress)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		tags := img.RepoTags
		if len(tags) > 0 {
			img.Tagged = time.Now()
		}
		if err := s.cfg.Images.PutImage(ctx, img); err != nil {
			return err
		}
		img.RepoTags = tags
		loaded(img)
	}
	return nil
}

// repoAndTag splits a tagged name into its familiar repository and tag.
func repoAndTag(t string) (string, string, bool) {
	named, err := reference.ParseNormalizedNamed(t)
	if err != nil {
		return "", "", false
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return "", "", false
	}
	return reference.FamiliarName(named), tagged.Tag(), true
}
