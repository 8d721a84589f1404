package instances

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// securePath joins rel under root and fails if any existing parent
// component inside root is a symlink, so that writing to the result never
// leaves root (an image may hold symlinks to absolute host paths).
func securePath(root, rel string) (string, error) {
	clean := filepath.Clean("/" + rel)
	if clean == "/" {
		return root, nil
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	cur := root
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s: parent %s is a symlink", rel, cur)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s: parent %s is not a directory", rel, cur)
		}
	}
	return filepath.Join(root, clean), nil
}

type dirMeta struct {
	path  string
	mode  fs.FileMode
	mtime time.Time
}

// extract unpacks a flattened image filesystem (mutate.Extract's stream:
// whiteouts applied, upper layers first) into dir, keeping modes, owners,
// symlinks, hard links, devices and modification times. Entries that would
// escape dir are skipped.
func extract(r io.Reader, dir string) error {
	root := os.Geteuid() == 0
	tr := tar.NewReader(r)
	var dirs []dirMeta
	type link struct{ path, target string }
	var links []link
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		path, err := securePath(dir, h.Name)
		if err != nil || path == dir {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("extract %s: %w", h.Name, err)
		}
		mode := fs.FileMode(h.Mode).Perm() | setBits(h.Mode)
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(path); err == nil && !fi.IsDir() {
				_ = os.RemoveAll(path)
			}
			if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("extract %s: %w", h.Name, err)
			}
			dirs = append(dirs, dirMeta{path, mode, h.ModTime})
		case tar.TypeReg:
			_ = os.RemoveAll(path)
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("extract %s: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extract %s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			_ = os.RemoveAll(path)
			if err := os.Symlink(h.Linkname, path); err != nil {
				return fmt.Errorf("extract %s: %w", h.Name, err)
			}
		case tar.TypeLink:
			links = append(links, link{path, h.Linkname})
			continue
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			_ = os.RemoveAll(path)
			kind := uint32(syscall.S_IFIFO)
			switch h.Typeflag {
			case tar.TypeChar:
				kind = syscall.S_IFCHR
			case tar.TypeBlock:
				kind = syscall.S_IFBLK
			}
			dev := int(mkdev(uint32(h.Devmajor), uint32(h.Devminor)))
			if err := syscall.Mknod(path, kind|uint32(mode.Perm()), dev); err != nil {
				if root {
					return fmt.Errorf("extract %s: mknod: %w", h.Name, err)
				}
				continue
			}
		default:
			continue // xattr-only and unknown entries
		}
		if err := os.Lchown(path, h.Uid, h.Gid); err != nil && root {
			return fmt.Errorf("extract %s: chown: %w", h.Name, err)
		}
		if h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeDir {
			if err := os.Chmod(path, mode); err != nil {
				return fmt.Errorf("extract %s: chmod: %w", h.Name, err)
			}
			_ = os.Chtimes(path, h.ModTime, h.ModTime)
		}
	}
	for _, l := range links {
		target, err := securePath(dir, l.target)
		if err != nil {
			continue
		}
		_ = os.RemoveAll(l.path)
		if err := os.Link(target, l.path); err != nil {
			return fmt.Errorf("extract hard link %s: %w", l.path, err)
		}
	}
	// Directory modes and times last: writing inside changes them.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("extract dir %s: %w", d.path, err)
		}
		_ = os.Chtimes(d.path, d.mtime, d.mtime)
	}
	return nil
}

// setBits converts tar's setuid/setgid/sticky bits to fs.FileMode bits.
func setBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&04000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&02000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&01000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// mkdev encodes a device number as Linux's makedev does.
func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}
