package volumes

import (
	"context"
	"fmt"
	"strings"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// listKeys are the filters docker volume ls takes; pruneKeys prune's.
var (
	listKeys  = map[string]bool{"name": true, "driver": true, "label": true, "label!": true, "dangling": true}
	pruneKeys = map[string]bool{"label": true, "label!": true, "all": true}
)

// List is docker volume ls: the namespace's volumes that match f, by name.
func (s *Service) List(ctx context.Context, ns string, f engine.Filters) ([]*Volume, error) {
	if err := checkKeys(f, listKeys); err != nil {
		return nil, err
	}
	var dangling *bool
	for _, d := range f["dangling"] {
		b, ok := parseBool(d)
		if !ok {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter 'dangling=%s'", d)
		}
		if dangling != nil && *dangling != b {
			return nil, engine.Errorf(engine.KindInvalid, "conflicting filter values for 'dangling'")
		}
		dangling = &b
	}
	vs, err := s.cfg.Store.ListVolumes(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := vs[:0]
	for _, v := range vs {
		if v.Removing || !engine.AnyOf(f["name"], func(n string) bool { return strings.Contains(v.Name, n) }) ||
			!engine.AnyOf(f["driver"], func(d string) bool { return d == "local" }) ||
			!engine.MatchLabels(f["label"], v.Labels, true) || !engine.MatchLabels(f["label!"], v.Labels, false) {
			continue
		}
		if dangling != nil && s.InUse(ctx, v) == *dangling {
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// Prune is docker volume prune: it removes the unused volumes matching f
// (only anonymous ones unless all, as API 1.42 and later) and returns
// their names and the bytes they held.
func (s *Service) Prune(ctx context.Context, ns string, f engine.Filters, all bool) ([]string, uint64, error) {
	if err := checkKeys(f, pruneKeys); err != nil {
		return nil, 0, err
	}
	for _, a := range f["all"] {
		b, ok := parseBool(a)
		if !ok {
			return nil, 0, engine.Errorf(engine.KindInvalid, "invalid filter 'all=%s': invalid value", a)
		}
		all = all || b
	}
	vs, err := s.cfg.Store.ListVolumes(ctx, ns)
	if err != nil {
		return nil, 0, fmt.Errorf("prune volumes: %w", err)
	}
	deleted := []string{}
	var reclaimed uint64
	for _, v := range vs {
		if (!all && !v.Anonymous) || s.InUse(ctx, v) ||
			!engine.MatchLabels(f["label"], v.Labels, true) || !engine.MatchLabels(f["label!"], v.Labels, false) {
			continue
		}
		size := s.size(ctx, v)
		if err := s.remove(ctx, ns, v.Name); err != nil {
			if k := engine.KindOf(err); k == engine.KindConflict || k == engine.KindNotFound {
				continue // taken meanwhile, or gone
			}
			return deleted, reclaimed, err
		}
		deleted = append(deleted, v.Name)
		if size > 0 {
			reclaimed += uint64(size)
		}
	}
	return deleted, reclaimed, nil
}

// Usage is one volume's line of docker system df -v.
type Usage struct {
	Volume   *Volume
	Size     int64 // -1 if it could not be measured
	RefCount int
}

// Usage measures the namespace's volumes (docker system df).
func (s *Service) Usage(ctx context.Context, ns string) ([]Usage, error) {
	vs, err := s.cfg.Store.ListVolumes(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("volume usage: %w", err)
	}
	out := make([]Usage, 0, len(vs))
	for _, v := range vs {
		if v.Removing {
			continue
		}
		out = append(out, Usage{Volume: v, Size: s.size(ctx, v), RefCount: len(v.Users) - len(s.staleUsers(ctx, v))})
	}
	return out, nil
}

// size measures v's data, -1 if it cannot.
func (s *Service) size(ctx context.Context, v *Volume) int64 {
	if s.cfg.Data == nil {
		return -1
	}
	n, err := s.cfg.Data.Size(ctx, Dir(v.Namespace, v.Name))
	if err != nil {
		s.log.Warn("measure volume", "volume", v.Name, "err", err)
		return -1
	}
	return n
}

func checkKeys(f engine.Filters, ok map[string]bool) error {
	for k := range f {
		if !ok[k] {
			return engine.Errorf(engine.KindInvalid, "invalid filter '%s'", k)
		}
	}
	return nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}
