package archive

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/sockerless/sockerless/agent/proto"
)

// WriteLayer writes changes as an image layer: each added or modified
// path as it is now (a directory alone, without its contents), each
// deleted one as a whiteout (".wh." before its name in its directory), in
// the changes' path order, so directories come before their contents.
func (t *Tree) WriteLayer(w io.Writer, changes []proto.Change) error {
	tw := tar.NewWriter(w)
	for _, c := range changes {
		if c.Kind == proto.ChangeDelete {
			dir, base := path.Split(c.Path)
			h := &tar.Header{Name: strings.TrimPrefix(dir, "/") + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o644}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		if err := t.writeEntry(tw, c.Path, false); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since it was compared
			}
			return err
		}
	}
	return tw.Close()
}

// Export writes the whole tree as a tar, as docker export: mount points
// appear empty, skipped paths not at all.
func (t *Tree) Export(w io.Writer) error {
	tw := tar.NewWriter(w)
	err := t.each("/", func(cp string, st *syscall.Stat_t) (bool, error) {
		mount := t.Mounts[cp]
		if err := t.writeEntry(tw, cp, mount); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return false, err
		}
		return st.Mode&syscall.S_IFMT == syscall.S_IFDIR && !mount, nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// writeEntry writes container path p (its header, and a regular file's
// content unless empty is set) with a name relative to the root.
func (t *Tree) writeEntry(tw *tar.Writer, p string, empty bool) error {
	hp := t.host(p)
	fi, err := os.Lstat(hp)
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		if link, err = os.Readlink(hp); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name = strings.TrimPrefix(p, "/")
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uname, h.Gname = "", ""
	regular := fi.Mode().IsRegular()
	if regular && empty {
		h.Size = 0
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !regular || empty {
		return nil
	}
	f, err := os.Open(hp)
	if err != nil {
		return err
	}
	defer f.Close()
	// A file that grows while it is read is cut at the size in its
	// header; one that shrinks is padded, as the header promised.
	n, err := io.Copy(tw, io.LimitReader(f, h.Size))
	if err != nil {
		return err
	}
	if n < h.Size {
		_, err = io.CopyN(tw, zeros{}, h.Size-n)
	}
	return err
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
