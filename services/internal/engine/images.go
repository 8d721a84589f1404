package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/moby/moby/api/types/registry"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// normalizeRef returns docker's familiar form of an image reference
// ("busybox" → "busybox:latest"), or "" if ref is not a reference.
func normalizeRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

// Image finds a stored image by reference, ID or ID prefix. A missing image,
// or one another namespace's (see WithImageNamespace), is docker's 404 "No
// such image: busybox:latest".
func (e *Engine) Image(ctx context.Context, ref string) (*Image, error) {
	norm := normalizeRef(ref)
	if norm != "" {
		img, err := e.cfg.Store.GetImage(ctx, norm)
		if err == nil && visible(ctx, img) && tagVisible(ctx, img, norm) {
			return img, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("get image %s: %w", norm, err)
		}
	}
	img, err := e.cfg.Store.GetImage(ctx, ref)
	if err == nil && (!visible(ctx, img) || !tagVisible(ctx, img, ref)) {
		err = ErrNotFound
	}
	if err == nil {
		return img, nil
	}
	if errors.Is(err, ErrNotFound) {
		shown := norm
		if shown == "" {
			shown = ref
		}
		return nil, &Error{Kind: KindNotFound, Message: "No such image: " + shown, Err: err}
	}
	return nil, fmt.Errorf("get image %s: %w", ref, err)
}

// Images lists the stored images ctx's namespace sees.
func (e *Engine) Images(ctx context.Context) ([]*Image, error) {
	all, err := e.cfg.Store.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(img *Image) bool { return !visible(ctx, img) })
	for _, img := range all {
		img.RepoTags = VisibleTags(ctx, img)
	}
	return all, nil
}

// Pull resolves ref through the registries and stores its metadata.
func (e *Engine) Pull(ctx context.Context, ref string) (*Image, error) {
	if normalizeRef(ref) == "" {
		return nil, Errorf(KindInvalid, "invalid reference format: %s", ref)
	}
	img, err := e.cfg.Images.Pull(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := e.PutImage(ctx, img); err != nil {
		return nil, fmt.Errorf("store image %s: %w", ref, err)
	}
	return img, nil
}

// Distribution describes ref as its registry has it, without pulling it:
// 501 when the image source cannot.
func (e *Engine) Distribution(ctx context.Context, ref string) (*registry.DistributionInspect, error) {
	if normalizeRef(ref) == "" {
		return nil, Errorf(KindInvalid, "invalid reference format: %s", ref)
	}
	d, ok := e.cfg.Images.(ImageDistribution)
	if !ok {
		return nil, Errorf(KindNotImplemented, "GET /distribution is not supported by this image source")
	}
	out, err := d.Distribution(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("distribution of %s: %w", ref, err)
	}
	return out, nil
}

// RemoveImage deletes an image's metadata unless a container uses it.
func (e *Engine) RemoveImage(ctx context.Context, ns, ref string, force bool) (*Image, error) {
	defer e.imagesChanged()
	img, err := e.Image(ctx, ref)
	if err != nil {
		return nil, err
	}
	name := normalizeRef(ref)
	if others := tagSeenByOthers(ctx, img, name); others != nil {
		// Other namespaces have this name too: it goes from this one's
		// view only.
		img.TagSeen[name] = others
		if err := e.cfg.Store.PutImage(ctx, img); err != nil {
			return nil, fmt.Errorf("untag %s: %w", ref, err)
		}
		return &Image{RepoTags: []string{name}}, nil
	}
	if len(img.RepoTags) > 1 && slices.Contains(img.RepoTags, name) {
		// As docker: one of several names goes; the image stays.
		if err := e.cfg.Store.UntagImage(ctx, img.ID, name); err != nil {
			return nil, fmt.Errorf("untag %s: %w", ref, err)
		}
		return &Image{RepoTags: []string{name}}, nil
	}
	if SeenByOthers(ctx, img) {
		// Other namespaces see it too: it goes from this one's view only.
		if _, err := e.DropImage(ctx, img.ID); err != nil {
			return nil, fmt.Errorf("remove image %s: %w", ref, err)
		}
		return img, nil
	}
	if !force {
		cs, err := e.cfg.Store.ListContainers(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		for _, c := range cs {
			if c.ImageID == img.ID {
				return nil, Errorf(KindConflict, "conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", ref, c.ID[:12])
			}
		}
	}
	if err := e.cfg.Store.DeleteImage(ctx, img.ID); err != nil {
		return nil, fmt.Errorf("delete image %s: %w", ref, err)
	}
	return img, nil
}

// TagImage gives the image ref the name repo:tag (tag "" is "latest"),
// taking it from any image that had it, as docker tag does.
func (e *Engine) TagImage(ctx context.Context, ref, repo, tag string) error {
	defer e.imagesChanged()
	img, err := e.Image(ctx, ref)
	if err != nil {
		return err
	}
	if tag == "" {
		tag = "latest"
	}
	full := repo + ":" + tag
	if strings.HasPrefix(tag, "sha256:") || normalizeRef(full) == "" {
		return Errorf(KindInvalid, "invalid reference format: %s", full)
	}
	name := normalizeRef(full)
	if !slices.Contains(img.RepoTags, name) {
		img.RepoTags = append(img.RepoTags, name)
	}
	img.Tagged = time.Now()
	SeeImage(ctx, img)
	seeTag(ctx, img, name)
	if err := e.cfg.Store.PutImage(ctx, img); err != nil {
		return fmt.Errorf("tag %s as %s: %w", ref, name, err)
	}
	return nil
}
