package imageops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Changes is docker diff: the container's files that differ from its
// image's. A container that has never run has none.
func (s *Service) Changes(ctx context.Context, ns, ref string) ([]proto.Change, error) {
	c, never, err := s.cfg.Engine.NeverStarted(ctx, ns, ref)
	if err != nil || never {
		return nil, err
	}
	base, err := s.cfg.Engine.Image(ctx, c.ImageID)
	if err != nil {
		return nil, err
	}
	idx, err := s.index(ctx, base)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := s.cfg.Engine.FilesOp(ctx, ns, c.ID, proto.ArchiveChanges, bytes.NewReader(idx), &out); err != nil {
		return nil, err
	}
	var changes []proto.Change
	dec := json.NewDecoder(bufio.NewReader(&out))
	for dec.More() {
		var ch proto.Change
		if err := dec.Decode(&ch); err != nil {
			return nil, fmt.Errorf("changes of %s: %w", ref, err)
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// SizeRw is the size of the files a container added or changed (docker's
// SizeRw); 0 for a container without a live instance.
func (s *Service) SizeRw(ctx context.Context, ns string, c *engine.Container) int64 {
	if c.Instance != "up" {
		return 0
	}
	changes, err := s.Changes(ctx, ns, c.ID)
	if err != nil {
		s.log.Debug("container size", "container", c.ID, "err", err)
		return 0
	}
	var n int64
	for _, ch := range changes {
		n += ch.Size
	}
	return n
}

// Export is docker export: the container's filesystem as a tar, written
// to w (begin is called before the first byte). A container that has
// never run exports its image's files.
func (s *Service) Export(ctx context.Context, ns, ref string, begin func(), w io.Writer) error {
	c, never, err := s.cfg.Engine.NeverStarted(ctx, ns, ref)
	if err != nil {
		return err
	}
	lw := &lazyWriter{w: w, begin: begin}
	if never {
		img, err := s.cfg.Engine.Image(ctx, c.ImageID)
		if err != nil {
			return err
		}
		rc, err := s.cfg.Registry.Filesystem(ctx, img)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(lw, rc)
		return err
	}
	return s.cfg.Engine.FilesOp(ctx, ns, c.ID, proto.ArchiveExport, nil, lw)
}

// lazyWriter calls begin before its first write, so an error found
// before any byte can still be answered as an error.
type lazyWriter struct {
	w       io.Writer
	begin   func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		if l.begin != nil {
			l.begin()
		}
	}
	return l.w.Write(p)
}
