package instances

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// overlaySupported reports whether an overlayfs can be mounted with lower,
// upper and work directories under dir (it needs root and a kernel and
// filesystem that allow it).
func overlaySupported(dir string) bool {
	probe, err := os.MkdirTemp(dir, "overlay-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(probe)
	l, u, w, m := filepath.Join(probe, "l"), filepath.Join(probe, "u"), filepath.Join(probe, "w"), filepath.Join(probe, "m")
	for _, d := range []string{l, u, w, m} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return false
		}
	}
	if err := mountOverlay(l, u, w, m); err != nil {
		return false
	}
	_ = syscall.Unmount(m, syscall.MNT_DETACH)
	return true
}

func mountOverlay(lower, upper, work, target string) error {
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// makeRootfs makes target a fresh, writable root filesystem with the
// content of lower: an overlay mount whose upper and work directories live
// in scratch, or, without overlay support, a full copy.
func makeRootfs(lower, scratch, target string, overlay bool) error {
	if overlay {
		upper, work := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work")
		for _, d := range []string{upper, work, target} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		return mountOverlay(lower, upper, work, target)
	}
	return copyTree(lower, target)
}

// copyTree copies the tree at src to dst (which must not exist), keeping
// modes, owners, symlinks, hard links (as copies), devices and times.
func copyTree(src, dst string) error {
	root := os.Geteuid() == 0
	var dirs []dirMeta
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			if err := os.Mkdir(out, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{out, mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), fi.ModTime()})
		case mode.IsRegular():
			if err := copyFile(path, out); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
		case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeCharDevice) != 0 && st != nil:
			if err := syscall.Mknod(out, st.Mode, int(st.Rdev)); err != nil {
				if root {
					return fmt.Errorf("mknod %s: %w", out, err)
				}
				return nil
			}
		default:
			return nil // sockets and the like
		}
		if st != nil {
			if err := os.Lchown(out, int(st.Uid), int(st.Gid)); err != nil && root {
				return fmt.Errorf("chown %s: %w", out, err)
			}
		}
		if !mode.IsDir() && mode&fs.ModeSymlink == 0 {
			if err := os.Chmod(out, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return err
			}
			_ = os.Chtimes(out, fi.ModTime(), fi.ModTime())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy rootfs: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode); err != nil {
			return fmt.Errorf("copy rootfs: %w", err)
		}
		_ = os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// unmountUnder detaches every mount at or below dir (deepest first), as
// left by instances of an earlier run that ended without cleaning up.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount decodes mountinfo's octal escapes (\040 for space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writeEtcFiles makes /etc/resolv.conf and /etc/hosts regular files of the
// rootfs with the given content, replacing what the image has there (a
// symlink included), so that the instance's agent can rewrite them, in
// place or by renaming a new file over them.
func writeEtcFiles(rootfs string, resolvConf, hosts []byte) error {
	for _, f := range []struct {
		rel  string
		data []byte
	}{{"etc/resolv.conf", resolvConf}, {"etc/hosts", hosts}} {
		p, err := securePath(rootfs, f.rel)
		if err != nil {
			return fmt.Errorf("write /%s: %w", f.rel, err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write /%s: %w", f.rel, err)
		}
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("write /%s: %w", f.rel, err)
			}
		}
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("write /%s: %w", f.rel, err)
		}
		_, err = out.Write(f.data)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(p, 0o644)
		}
		if err != nil {
			return fmt.Errorf("write /%s: %w", f.rel, err)
		}
	}
	return nil
}
