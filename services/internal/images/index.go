package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Index writes the file index of img's flattened filesystem (every path
// with its type, mode, owner, size, time and link target) as
// proto.FileEntry JSON lines: what the agent compares an instance's files
// against for docker diff and commit. It reads every layer.
func (s *Source) Index(ctx context.Context, img *engine.Image, w io.Writer) error {
	base, err := s.image(ctx, img)
	if err != nil {
		return err
	}
	rc := mutate.Extract(base)
	defer rc.Close()
	entries, err := indexTar(rc)
	if err != nil {
		return fmt.Errorf("index %s: %w", img.ID, err)
	}
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// indexTar reads a flattened filesystem tar into entries, hard links
// resolved to what they link to.
func indexTar(r io.Reader) ([]proto.FileEntry, error) {
	tr := tar.NewReader(r)
	byPath := map[string]int{}
	var out []proto.FileEntry
	var links []int // entries that are hard links, with Link their target
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean("/" + h.Name)
		e := proto.FileEntry{Path: p, Mode: uint32(h.Mode) & 0o7777, UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeDir:
			e.Mode |= syscall.S_IFDIR
		case tar.TypeSymlink:
			e.Mode |= syscall.S_IFLNK
			e.Link = h.Linkname
		case tar.TypeLink:
			e.Link = path.Clean("/" + h.Linkname)
			links = append(links, len(out))
		case tar.TypeChar:
			e.Mode |= syscall.S_IFCHR
		case tar.TypeBlock:
			e.Mode |= syscall.S_IFBLK
		case tar.TypeFifo:
			e.Mode |= syscall.S_IFIFO
		default:
			e.Mode |= syscall.S_IFREG
			e.Size, e.Mtime = h.Size, h.ModTime.UnixNano()
		}
		if _, ok := byPath[p]; ok {
			continue // an upper layer's entry came first
		}
		byPath[p] = len(out)
		out = append(out, e)
	}
	for _, i := range links {
		t, ok := byPath[out[i].Link]
		if !ok || out[t].Mode&syscall.S_IFMT != syscall.S_IFREG {
			out[i].Mode |= syscall.S_IFREG
			out[i].Link = ""
			continue
		}
		target := out[t]
		target.Path = out[i].Path
		out[i] = target
	}
	return out, nil
}
