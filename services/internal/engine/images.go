package engine

import (
	"context"
	"errors"
	"fmt"
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

// Image finds a stored image by reference, ID or ID prefix. A missing image
// is docker's 404 "No such image: busybox:latest".
func (e *Engine) Image(ctx context.Context, ref string) (*Image, error) {
	norm := normalizeRef(ref)
	if norm != "" {
		img, err := e.cfg.Store.GetImage(ctx, norm)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("get image %s: %w", norm, err)
		}
	}
	img, err := e.cfg.Store.GetImage(ctx, ref)
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

// Images lists stored images.
func (e *Engine) Images(ctx context.Context) ([]*Image, error) {
	return e.cfg.Store.ListImages(ctx)
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
	if err := e.cfg.Store.PutImage(ctx, img); err != nil {
		return nil, fmt.Errorf("store image %s: %w", ref, err)
	}
	return img, nil
}

// RemoveImage deletes an image's metadata unless a container uses it.
func (e *Engine) RemoveImage(ctx context.Context, ns, ref string, force bool) (*Image, error) {
	img, err := e.Image(ctx, ref)
	if err != nil {
		return nil, err
	}
	if name := normalizeRef(ref); len(img.RepoTags) > 1 && slices.Contains(img.RepoTags, name) {
		// As docker: one of several names goes; the image stays.
		untagged := *img
		untagged.RepoTags = slices.DeleteFunc(slices.Clone(img.RepoTags), func(t string) bool { return t == name })
		if err := e.cfg.Store.PutImage(ctx, &untagged); err != nil {
			return nil, fmt.Errorf("untag %s: %w", ref, err)
		}
		return &Image{RepoTags: []string{name}}, nil
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
	if err := e.cfg.Store.PutImage(ctx, img); err != nil {
		return fmt.Errorf("tag %s as %s: %w", ref, name, err)
	}
	return nil
}
