package imageops

import (
	"context"
	"fmt"
	"strconv"

	"github.com/moby/moby/api/types/image"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Prune is docker image prune: images no container of the namespace uses
// and that match f (dangling: only untagged ones unless "false"; until;
// label, label!). It reports each name untagged and image deleted and
// the bytes of the layers no remaining image shares.
func (s *Service) Prune(ctx context.Context, ns string, f engine.Filters) ([]image.DeleteResponse, int64, error) {
	for k := range f {
		switch k {
		case "dangling", "until", "label", "label!":
		default:
			return nil, 0, engine.Errorf(engine.KindInvalid, "invalid filter '%s'", k)
		}
	}
	danglingOnly := true
	for _, v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, 0, engine.Errorf(engine.KindInvalid, "invalid filter 'dangling=%s'", v)
		}
		danglingOnly = b
	}
	imgs, used, err := s.imagesInUse(ctx, ns)
	if err != nil {
		return nil, 0, err
	}
	var deleted []image.DeleteResponse
	var gone, kept []*engine.Image
	for _, img := range imgs {
		ok, err := pruneMatch(img, f, danglingOnly)
		if err != nil {
			return nil, 0, err
		}
		if !ok || used[img.ID] > 0 {
			kept = append(kept, img)
			continue
		}
		if err := s.cfg.Images.DeleteImage(ctx, img.ID); err != nil {
			return deleted, 0, fmt.Errorf("prune image %s: %w", img.ID, err)
		}
		if !engine.SeenByOthers(ctx, img) { // others' images keep their copy
			s.Forget(ctx, img)
		}
		for _, t := range img.RepoTags {
			deleted = append(deleted, image.DeleteResponse{Untagged: t})
		}
		for _, d := range img.RepoDigests {
			deleted = append(deleted, image.DeleteResponse{Untagged: d})
		}
		deleted = append(deleted, image.DeleteResponse{Deleted: img.ID})
		gone = append(gone, img)
	}
	return deleted, uniqueBytes(gone, kept), nil
}

// pruneMatch applies image prune's filters to img.
func pruneMatch(img *engine.Image, f engine.Filters, danglingOnly bool) (bool, error) {
	if danglingOnly && len(img.RepoTags) > 0 {
		return false, nil
	}
	for _, u := range f["until"] {
		t, err := engine.ParseTime(u)
		if err != nil {
			return false, err
		}
		if !img.Created.Before(t) {
			return false, nil
		}
	}
	var labels map[string]string
	if img.Config != nil {
		labels = img.Config.Labels
	}
	return engine.MatchLabels(f["label"], labels, true) && engine.MatchLabels(f["label!"], labels, false), nil
}

// imagesInUse lists the images with the number of the namespace's
// containers using each (by image ID).
func (s *Service) imagesInUse(ctx context.Context, ns string) ([]*engine.Image, map[string]int, error) {
	imgs, err := s.cfg.Engine.Images(ctx)
	if err != nil {
		return nil, nil, err
	}
	cs, err := s.cfg.Engine.List(ctx, ns, engine.ListOptions{All: true})
	if err != nil {
		return nil, nil, err
	}
	used := map[string]int{}
	for _, c := range cs {
		used[c.ImageID]++
	}
	return imgs, used, nil
}

// uniqueBytes is the size of the layers of gone that no image of kept
// has (each layer counted once).
func uniqueBytes(gone, kept []*engine.Image) int64 {
	keep := map[string]bool{}
	for _, img := range kept {
		for _, l := range img.Layers {
			keep[layerKey(l)] = true
		}
	}
	var n int64
	for _, img := range gone {
		if len(img.Layers) == 0 {
			n += img.Size
			continue
		}
		for _, l := range img.Layers {
			if k := layerKey(l); !keep[k] {
				keep[k] = true
				n += l.Size
			}
		}
	}
	return n
}

func layerKey(l engine.ImageLayer) string { return l.DiffID + "/" + strconv.FormatInt(l.Size, 10) }

// Usage is the image part of docker system df: each image with the
// number of the namespace's containers using it and the size of its
// layers other images share, and the size of all distinct layers.
func (s *Service) Usage(ctx context.Context, ns string) ([]image.Summary, int64, error) {
	imgs, used, err := s.imagesInUse(ctx, ns)
	if err != nil {
		return nil, 0, err
	}
	holders := map[string]int{}
	for _, img := range imgs {
		for _, l := range img.Layers {
			holders[layerKey(l)]++
		}
	}
	out := make([]image.Summary, 0, len(imgs))
	var total int64
	seen := map[string]bool{}
	for _, img := range imgs {
		var shared int64
		for _, l := range img.Layers {
			k := layerKey(l)
			if holders[k] > 1 {
				shared += l.Size
			}
			if !seen[k] {
				seen[k] = true
				total += l.Size
			}
		}
		if len(img.Layers) == 0 {
			total += img.Size
		}
		out = append(out, Summary(img, int64(used[img.ID]), shared))
	}
	return out, total, nil
}

// Summary is img as docker images lists it.
func Summary(img *engine.Image, containers, shared int64) image.Summary {
	labels := map[string]string{}
	if img.Config != nil && img.Config.Labels != nil {
		labels = img.Config.Labels
	}
	return image.Summary{
		ID:          img.ID,
		ParentID:    img.Parent,
		RepoTags:    nonNil(img.RepoTags),
		RepoDigests: nonNil(img.RepoDigests),
		Created:     img.Created.Unix(),
		Size:        img.Size,
		Labels:      labels,
		Containers:  containers,
		SharedSize:  shared,
	}
}

// Forget deletes a removed image's bytes from the deployment's image
// repository if they are there (docker rmi of a loaded, imported or
// committed image); a failure is logged: the record is gone already.
func (s *Service) Forget(ctx context.Context, img *engine.Image) {
	if err := s.cfg.Registry.Forget(ctx, img); err != nil {
		s.log.Warn("removed image's registry copy kept", "image", img.ID, "err", err)
	}
}
