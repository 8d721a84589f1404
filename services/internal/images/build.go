package images

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/imageops"
)

// Build pushes n to the deployment's image repository (the layer is
// compressed and uploaded as it is read) and returns its record.
func (s *Source) Build(ctx context.Context, n imageops.NewImage) (*engine.Image, error) {
	repo, err := s.targetRepo()
	if err != nil {
		return nil, err
	}
	if n.Created.IsZero() {
		n.Created = time.Now()
	}
	cfg := map[string]json.RawMessage{}
	var history []v1.History
	var diffIDs []v1.Hash
	var layers []pushedLayer
	if n.Base != nil {
		base, err := s.image(ctx, n.Base)
		if err != nil {
			return nil, err
		}
		raw, err := base.RawConfigFile()
		if err != nil {
			return nil, fmt.Errorf("config of %s: %w", n.Base.ID, err)
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("config of %s: %w", n.Base.ID, err)
		}
		cf, err := base.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("config of %s: %w", n.Base.ID, err)
		}
		history, diffIDs = cf.History, cf.RootFS.DiffIDs
		if layers, err = s.copyLayers(ctx, repo, base); err != nil {
			return nil, err
		}
	}
	l, err := s.pushLayer(ctx, repo, n.Layer, "layer", -1, nil)
	if err != nil {
		return nil, err
	}
	layers = append(layers, l)
	diffIDs = append(diffIDs, l.diffID)
	history = append(history, v1.History{Created: v1.Time{Time: n.Created}, CreatedBy: n.CreatedBy, Author: n.Author, Comment: n.Comment})
	set := func(key string, v any) error {
		b, err := json.Marshal(v)
		cfg[key] = b
		return err
	}
	for key, v := range map[string]any{
		"config":  n.Config,
		"created": n.Created.UTC(),
		"history": history,
		"rootfs":  v1.RootFS{Type: "layers", DiffIDs: diffIDs},
	} {
		if err := set(key, v); err != nil {
			return nil, err
		}
	}
	for key, v := range map[string]string{"author": n.Author, "comment": n.Comment, "container": n.Container} {
		if v == "" {
			delete(cfg, key)
		} else if err := set(key, v); err != nil {
			return nil, err
		}
	}
	if n.ContainerConfig != nil {
		if err := set("container_config", n.ContainerConfig); err != nil {
			return nil, err
		}
	} else {
		delete(cfg, "container_config")
	}
	for key, v := range map[string]string{"os": "linux", "architecture": "amd64"} {
		if _, ok := cfg[key]; !ok {
			if err := set(key, v); err != nil {
				return nil, err
			}
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return s.putImage(ctx, repo, raw, layers)
}

// copyLayers makes sure img's layers are in repo (a registry skips those
// it has, a mirror's are copied) and returns them.
func (s *Source) copyLayers(ctx context.Context, repo name.Repository, img v1.Image) ([]pushedLayer, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []pushedLayer
	for _, l := range ls {
		if err := remote.WriteLayer(repo, l, s.remoteOpts(ctx)...); err != nil {
			return nil, fmt.Errorf("copy layer to %s: %w", repo.Name(), err)
		}
		var p pushedLayer
		if p.digest, err = l.Digest(); err == nil {
			if p.diffID, err = l.DiffID(); err == nil {
				if p.size, err = l.Size(); err == nil {
					p.mediaType, err = l.MediaType()
				}
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
