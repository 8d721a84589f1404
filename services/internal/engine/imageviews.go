package engine

import (
	"context"
	"slices"
)

// Images are content shared by the namespaces of a control plane, but each
// namespace sees only the images it pulled, loaded, imported, committed or
// tagged (Image.Seen), and of their names only those it gave or pulled
// (Image.TagSeen). A name is still one record for the whole control plane:
// tagging moves it from any other image, whoever had it.

// imageNSKey carries the namespace whose images a call sees.
type imageNSKey struct{}

// WithImageNamespace returns ctx in which the image calls (Image,
// Images, Pull, TagImage, RemoveImage, SeeImage) see and record the
// images of namespace ns. The Docker API sets it on every request; without
// it, every image is seen (the engine's own work, tests).
func WithImageNamespace(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, imageNSKey{}, ns)
}

// ImageNamespace returns the namespace of WithImageNamespace, if any.
func ImageNamespace(ctx context.Context) (string, bool) {
	ns, ok := ctx.Value(imageNSKey{}).(string)
	return ns, ok
}

// visible reports whether ctx's namespace sees img.
func visible(ctx context.Context, img *Image) bool {
	ns, ok := ImageNamespace(ctx)
	return !ok || len(img.Seen) == 0 || slices.Contains(img.Seen, ns)
}

// SeeImage adds ctx's namespace to img.Seen (for a caller about to store
// img): the namespace now sees it.
func SeeImage(ctx context.Context, img *Image) {
	if ns, ok := ImageNamespace(ctx); ok && len(img.Seen) > 0 && !slices.Contains(img.Seen, ns) {
		img.Seen = append(img.Seen, ns)
	} else if ok && len(img.Seen) == 0 {
		img.Seen = []string{ns}
	}
}

// PutImage stores a new or changed image (pulled, loaded, imported,
// committed): ctx's namespace sees it from now on, and so do the
// namespaces that saw the image of that ID before.
func (e *Engine) PutImage(ctx context.Context, img *Image) error {
	defer e.imagesChanged()
	if _, scoped := ImageNamespace(ctx); scoped {
		if had, err := e.cfg.Store.GetImage(ctx, img.ID); err == nil && had.ID == img.ID {
			img.Seen = had.Seen
			if len(img.Seen) == 0 {
				img.Seen = []string{DefaultNamespace}
			}
			img.TagSeen = had.TagSeen
		}
		SeeImage(ctx, img)
		for _, t := range img.RepoTags {
			seeTag(ctx, img, t)
		}
	}
	return e.cfg.Store.PutImage(ctx, img)
}

// SeenByOthers reports whether namespaces other than ctx's see img, so
// that removing it there only takes it out of ctx's namespace's view.
func SeenByOthers(ctx context.Context, img *Image) bool {
	ns, ok := ImageNamespace(ctx)
	return ok && slices.Contains(img.Seen, ns) && slices.ContainsFunc(img.Seen, func(s string) bool { return s != ns })
}

// DropImage removes image id from ctx's namespace's view, and deletes its
// record when no other namespace sees it (deleted is then true).
func (e *Engine) DropImage(ctx context.Context, id string) (deleted bool, err error) {
	defer e.imagesChanged()
	img, err := e.cfg.Store.GetImage(ctx, id)
	if err != nil {
		return false, err
	}
	if SeenByOthers(ctx, img) {
		ns, _ := ImageNamespace(ctx)
		img.Seen = slices.DeleteFunc(img.Seen, func(s string) bool { return s == ns })
		return false, e.cfg.Store.PutImage(ctx, img)
	}
	return true, e.cfg.Store.DeleteImage(ctx, id)
}

// tagVisible reports whether ctx's namespace sees name on img (a name no
// namespace is recorded for is everyone's: images stored before
// namespaces, and IDs).
func tagVisible(ctx context.Context, img *Image, name string) bool {
	ns, ok := ImageNamespace(ctx)
	seen := img.TagSeen[normalizeRef(name)]
	return !ok || len(seen) == 0 || slices.Contains(seen, ns)
}

// VisibleTags are the names of img ctx's namespace sees.
func VisibleTags(ctx context.Context, img *Image) []string {
	out := make([]string, 0, len(img.RepoTags))
	for _, t := range img.RepoTags {
		if tagVisible(ctx, img, t) {
			out = append(out, t)
		}
	}
	return out
}

// seeTag records that ctx's namespace gave img the name.
func seeTag(ctx context.Context, img *Image, name string) {
	ns, ok := ImageNamespace(ctx)
	if !ok || name == "" {
		return
	}
	if img.TagSeen == nil {
		img.TagSeen = map[string][]string{}
	}
	if !slices.Contains(img.TagSeen[name], ns) {
		img.TagSeen[name] = append(img.TagSeen[name], ns)
	}
}

// tagSeenByOthers returns the other namespaces that see name on img, nil
// if there are none (or no namespaces are recorded).
func tagSeenByOthers(ctx context.Context, img *Image, name string) []string {
	ns, ok := ImageNamespace(ctx)
	seen := img.TagSeen[name]
	if !ok || !slices.Contains(seen, ns) {
		return nil
	}
	others := slices.DeleteFunc(slices.Clone(seen), func(s string) bool { return s == ns })
	if len(others) == 0 {
		return nil
	}
	return others
}
