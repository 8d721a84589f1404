package imageops

import (
	"context"

	"github.com/moby/moby/api/types/image"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// ConfigReader reads an image's full config; the Registry may implement
// it (package images does).
type ConfigReader interface {
	History(ctx context.Context, img *engine.Image) ([]HistoryEntry, error)
}

// HistoryEntry is one step of an image's history; EmptyLayer says it
// made no layer.
type HistoryEntry struct {
	Created    int64
	CreatedBy  string
	Comment    string
	EmptyLayer bool
}

// History is docker history: newest first, the image's own ID on its top
// entry (and on each ancestor committed here, with its names), layer
// sizes as the registry stores them.
func (s *Service) History(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	img, err := s.cfg.Engine.Image(ctx, ref)
	if err != nil {
		return nil, err
	}
	cr, ok := s.cfg.Registry.(ConfigReader)
	if !ok {
		return nil, engine.Errorf(engine.KindNotImplemented, "image history is not available")
	}
	var out []image.HistoryResponseItem
	for img != nil {
		hist, err := cr.History(ctx, img)
		if err != nil {
			return nil, err
		}
		var parent *engine.Image
		if img.Parent != "" {
			if p, err := s.cfg.Engine.Image(ctx, img.Parent); err == nil {
				parent = p
			}
		}
		own := ownHistory(img, hist, parent)
		for i, it := range own {
			if i == 0 {
				it.ID, it.Tags = img.ID, nonNil(img.RepoTags)
			}
			out = append(out, it)
		}
		img = parent
	}
	return out, nil
}

// ownHistory is img's entries newest first, without its parent's: an
// image committed here adds one entry to its parent's history.
func ownHistory(img *engine.Image, hist []HistoryEntry, parent *engine.Image) []image.HistoryResponseItem {
	if len(hist) == 0 {
		return []image.HistoryResponseItem{{ID: "<missing>", Created: img.Created.Unix(), Size: img.Size}}
	}
	sizes := make([]int64, len(hist))
	li := 0
	for i, h := range hist {
		if !h.EmptyLayer && li < len(img.Layers) {
			sizes[i] = img.Layers[li].Size
			li++
		}
	}
	first := 0
	if parent != nil {
		first = len(hist) - 1
	}
	var out []image.HistoryResponseItem
	for i := len(hist) - 1; i >= first; i-- {
		out = append(out, image.HistoryResponseItem{ID: "<missing>", Created: hist[i].Created, CreatedBy: hist[i].CreatedBy,
			Comment: hist[i].Comment, Size: sizes[i]})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
