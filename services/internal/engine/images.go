package engine

import (
	"context"
	"errors"
	"fmt"

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
