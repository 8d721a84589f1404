package imageops

import (
	"context"

	"github.com/distribution/reference"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// PushReport is what a push says as it goes (docker's JSON messages).
type PushReport struct {
	// Status is a line of docker's progress, with the layer it is about.
	Status func(status, id string)
	// Done ends one tag's push: its digest and manifest size.
	Done func(tag, digest string, size int64)
}

// Push is docker push of name (a repository) with tag, or every tag of
// the repository when tag is "".
func (s *Service) Push(ctx context.Context, name, tag string, auth PushAuth, rep PushReport) error {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return engine.Errorf(engine.KindInvalid, "invalid reference format: %s", name)
	}
	rep.Status("The push refers to repository ["+named.Name()+"]", "")
	repo := reference.FamiliarName(named)
	var tags []string
	if tag != "" {
		tags = []string{tag}
	} else {
		imgs, err := s.cfg.Engine.Images(ctx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, t := range img.RepoTags {
				if r, tg, ok := repoAndTag(t); ok && r == repo {
					tags = append(tags, tg)
				}
			}
		}
		if len(tags) == 0 {
			return engine.Errorf(engine.KindNotFound, "An image does not exist locally with the tag: %s", repo)
		}
	}
	for _, t := range tags {
		ref := repo + ":" + t
		img, err := s.cfg.Engine.Image(ctx, ref)
		if err != nil {
			if engine.KindOf(err) == engine.KindNotFound {
				return engine.Errorf(engine.KindNotFound, "An image does not exist locally with the tag: %s", repo)
			}
			return err
		}
		digest, size, err := s.cfg.Registry.Push(ctx, img, named.Name()+":"+t, auth, func(ps PushStatus) {
			rep.Status(ps.Status, ps.Layer)
		})
		if err != nil {
			return err
		}
		rep.Done(t, digest, size)
	}
	return nil
}
