package imageops

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// CommitRequest is docker commit (POST /commit).
type CommitRequest struct {
	Container string
	Repo, Tag string // the new image's name ("" for none)
	Author    string
	Comment   string
	Changes   []string
	Pause     bool
	// Config overrides the container's configuration.
	Config *container.Config
}

// Commit makes an image of the container's changed files as one layer on
// its image, with the container's configuration (completed as docker
// does) and the changes applied.
func (s *Service) Commit(ctx context.Context, ns string, req CommitRequest) (*engine.Image, error) {
	name, err := imageName(req.Repo, req.Tag)
	if err != nil {
		return nil, err
	}
	c, never, err := s.cfg.Engine.NeverStarted(ctx, ns, req.Container)
	if err != nil {
		return nil, err
	}
	base, err := s.cfg.Engine.Image(ctx, c.ImageID)
	if err != nil {
		return nil, err
	}
	user := &container.Config{}
	if req.Config != nil {
		user = req.Config
	}
	if err := applyChanges(user, req.Changes); err != nil {
		return nil, err
	}
	cfg := mergeConfig(user, c.Config)
	var layer io.Reader = bytes.NewReader(emptyTar())
	var pr *io.PipeReader
	var opErr chan error
	if !never {
		idx, err := s.index(ctx, base)
		if err != nil {
			return nil, err
		}
		if req.Pause && c.State.Status == engine.StatusRunning {
			if err := s.cfg.Engine.Pause(ctx, ns, c.ID); err == nil {
				defer func() { _ = s.cfg.Engine.Unpause(context.WithoutCancel(ctx), ns, c.ID) }()
			}
		}
		var pw *io.PipeWriter
		pr, pw = io.Pipe()
		opErr = make(chan error, 1)
		go func() {
			err := s.cfg.Engine.FilesOp(ctx, ns, c.ID, proto.ArchiveLayer, bytes.NewReader(idx), pw)
			pw.CloseWithError(err)
			opErr <- err
		}()
		layer = pr
	}
	img, err := s.cfg.Registry.Build(ctx, NewImage{
		Base: base, Layer: layer, Config: cfg, Author: req.Author, Comment: req.Comment,
		CreatedBy: strings.Join(append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...), " "),
		Container: c.ID, ContainerConfig: c.Config,
	})
	if pr != nil {
		pr.Close() // a failed build stops the agent's writing
		if oe := <-opErr; oe != nil {
			return nil, oe
		}
	}
	if err != nil {
		return nil, err
	}
	img.Parent = base.ID
	return s.store(ctx, img, name)
}

// ImportRequest is docker import from a tar stream (POST
// /images/create?fromSrc=-).
type ImportRequest struct {
	Repo, Tag string
	Message   string
	Changes   []string
	Platform  string
}

// Import makes an image of one layer: the tar r (compressed or not).
func (s *Service) Import(ctx context.Context, r io.Reader, req ImportRequest) (*engine.Image, error) {
	name, err := imageName(req.Repo, req.Tag)
	if err != nil {
		return nil, err
	}
	if p := req.Platform; p != "" && p != "linux" && p != "linux/amd64" {
		return nil, engine.Errorf(engine.KindInvalid, "image operating system or architecture %q cannot be used: functions run linux/amd64", p)
	}
	cfg := &container.Config{}
	if err := applyChanges(cfg, req.Changes); err != nil {
		return nil, err
	}
	now := time.Now()
	img, err := s.cfg.Registry.Build(ctx, NewImage{Layer: r, Config: cfg, Created: now, Comment: req.Message,
		CreatedBy: ""})
	if err != nil {
		return nil, err
	}
	return s.store(ctx, img, name)
}

// store records a new image under name ("" for none).
func (s *Service) store(ctx context.Context, img *engine.Image, name string) (*engine.Image, error) {
	if name != "" {
		img.RepoTags = []string{name}
		img.Tagged = time.Now()
	}
	if err := s.cfg.Images.PutImage(ctx, img); err != nil {
		return nil, fmt.Errorf("store image %s: %w", img.ID, err)
	}
	return img, nil
}

// imageName is docker's familiar repo:tag for a new image ("" without a
// repository), or docker's error for a bad one.
func imageName(repo, tag string) (string, error) {
	if repo == "" {
		return "", nil
	}
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return "", engine.Errorf(engine.KindInvalid, "invalid reference format: %s", repo)
	}
	if _, ok := named.(reference.Tagged); ok && tag != "" {
		return "", engine.Errorf(engine.KindInvalid, "invalid reference format: %s:%s", repo, tag)
	}
	if tag != "" {
		if named, err = reference.WithTag(named, tag); err != nil {
			return "", engine.Errorf(engine.KindInvalid, "invalid tag format: %s", tag)
		}
	}
	return reference.FamiliarString(reference.TagNameOnly(named)), nil
}

// emptyTar is a tar with nothing in it: the layer of a commit of a
// container that has not changed its image's files.
func emptyTar() []byte {
	var b bytes.Buffer
	_ = tar.NewWriter(&b).Close()
	return b.Bytes()
}
