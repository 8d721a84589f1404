// Package archive does docker cp's work inside the container in Go, so no
// tar binary is needed in the image: stat a path, write a path as a tar
// stream, extract a tar stream into a directory.
package archive

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

	"github.com/sockerless/sockerless/agent/proto"
)

// PathStat is docker's X-Docker-Container-Path-Stat.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	Mtime      time.Time   `json:"mtime"`
	LinkTarget string      `json:"linkTarget"`
}

// ExitCode is the ArchiveCommand exit code (proto.ArchiveOK, …) of an
// archive operation's error.
func ExitCode(err error) int {
	var bad *BadTarError
	switch {
	case err == nil:
		return proto.ArchiveOK
	case errors.As(err, &bad):
		return proto.ArchiveBadTar
	case errors.Is(err, fs.ErrNotExist):
		return proto.ArchiveNotFound
	case strings.Contains(err.Error(), "not a directory"):
		return proto.ArchiveNotDir
	}
	return proto.ArchiveFailed
}

// Stat describes path without following a final symlink.
func Stat(path string) (PathStat, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return PathStat{}, err
	}
	st := PathStat{Name: filepath.Base(path), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime().UTC()}
	if fi.Mode()&os.ModeSymlink != 0 {
		st.LinkTarget, _ = os.Readlink(path)
	}
	return st, nil
}

// Write writes path as a tar stream whose entries start with path's base
// name, as docker cp does; symlinks are kept as links.
func Write(w io.Writer, path string) error {
	tw := tar.NewWriter(w)
	base := filepath.Base(filepath.Clean(path))
	root := filepath.Dir(filepath.Clean(path))
	err := filepath.WalkDir(filepath.Clean(path), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if root == "/" && p == "/" {
			rel = base
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Extract unpacks a tar stream into dir, which must be an existing
// directory. Entries may not leave dir. Modes, mtimes and (as root)
// owners are kept.
func Extract(r io.Reader, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("extraction point is not a directory")
	}
	tr := tar.NewReader(r)
	// made are the symlinks this upload created: later entries are never
	// written through them (an upload could otherwise point a link
	// anywhere and then write there).
	made := map[string]bool{}
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &BadTarError{err}
		}
		name := filepath.Clean("/" + h.Name)
		target := filepath.Join(dir, name)
		if target != dir && !strings.HasPrefix(target, strings.TrimSuffix(dir, "/")+"/") {
			return &BadTarError{fmt.Errorf("entry %q leaves the destination", h.Name)}
		}
		for p := filepath.Dir(target); len(p) > len(dir); p = filepath.Dir(p) {
			if made[p] {
				return &BadTarError{fmt.Errorf("entry %q is beneath the symlink %q made by the same archive", h.Name, strings.TrimPrefix(p, dir))}
			}
		}
		if made[target] {
			_ = os.Remove(target) // replaced, never followed
			delete(made, target)
		}
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o4000 != 0 {
			mode |= os.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			mode |= os.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, h.ModTime})
		case tar.TypeReg:
			_ = os.Remove(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return &BadTarError{err}
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
			made[target] = true
		case tar.TypeLink:
			src := filepath.Join(dir, filepath.Clean("/"+h.Linkname))
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return &BadTarError{err}
			}
		default:
			continue // devices and fifos are not copied
		}
		if os.Geteuid() == 0 {
			_ = os.Lchown(target, h.Uid, h.Gid)
		}
		if h.Typeflag != tar.TypeSymlink {
			_ = os.Chmod(target, mode)
			_ = os.Chtimes(target, h.ModTime, h.ModTime)
		} else {
			ts := []syscall.Timespec{syscall.NsecToTimespec(h.ModTime.UnixNano()), syscall.NsecToTimespec(h.ModTime.UnixNano())}
			_ = lutimes(target, ts)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // after their contents changed
		_ = os.Chtimes(dirs[i].path, dirs[i].t, dirs[i].t)
	}
	return nil
}

// BadTarError is an upload that is not a tar or holds an entry that cannot
// be extracted: the client's fault, not the container's.
type BadTarError struct{ Err error }

func (e *BadTarError) Error() string { return e.Err.Error() }
func (e *BadTarError) Unwrap() error { return e.Err }
