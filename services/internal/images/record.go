package images

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// record describes img, found in a registry at source (pinned by
// digest), as the store keeps it: its config in docker's types, its
// layers and the fields docker image inspect shows.
func record(img v1.Image, source string) (*engine.Image, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("config digest: %w", err)
	}
	out := &engine.Image{
		ID:            id.String(),
		Created:       cf.Created.Time.UTC(),
		OS:            cf.OS,
		Arch:          cf.Architecture,
		Config:        convertConfig(cf.Config, raw),
		Source:        source,
		Author:        cf.Author,
		Container:     cf.Container,
		DockerVersion: cf.DockerVersion,
	}
	// What go-containerregistry's ConfigFile leaves out.
	var extra struct {
		Comment         string            `json:"comment"`
		ContainerConfig *container.Config `json:"container_config"`
	}
	if json.Unmarshal(raw, &extra) == nil {
		out.Comment, out.ContainerConfig = extra.Comment, extra.ContainerConfig
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	for i, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("layer %d size: %w", i, err)
		}
		var diffID string
		if i < len(cf.RootFS.DiffIDs) {
			diffID = cf.RootFS.DiffIDs[i].String()
		}
		out.Layers = append(out.Layers, engine.ImageLayer{DiffID: diffID, Size: n})
		out.Size += n
	}
	return out, nil
}
