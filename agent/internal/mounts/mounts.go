package mounts

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sockerless/sockerless/agent/proto"
)

// Apply makes ms in this process's mount namespace: volumes under root
// (proto.VolumesRoot outside tests), then covers root. Mounts are made
// parents first. A request of host binds alone (made once their initial
// copy is in, after the invocation's mounts) leaves root as it is.
func Apply(root string, ms []proto.Mount) error {
	bindsOnly := len(ms) > 0
	sorted := append([]proto.Mount(nil), ms...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Destination < sorted[j].Destination })
	for _, m := range sorted {
		var err error
		switch m.Type {
		case proto.MountVolume:
			err = bindVolume(root, m)
		case proto.MountTmpfs:
			err = mountTmpfs(m)
		case proto.MountDockerSocket:
			continue // no kernel mount: the instance serves the socket
		case proto.MountBind:
			err = bindStaging(m)
		default:
			err = fmt.Errorf("unknown mount type %q", m.Type)
		}
		if err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.Type, m.Destination, err)
		}
		bindsOnly = bindsOnly && m.Type == proto.MountBind
	}
	if bindsOnly {
		return nil
	}
	return cover(root)
}

// bindStaging bind-mounts a host bind's staging directory, or the one
// file in it, at its destination (read only with ReadOnly: the
// container's writes fail with EROFS, as under docker).
func bindStaging(m proto.Mount) error {
	src := filepath.Clean(m.Source)
	if !strings.HasPrefix(src, proto.BindsRoot+"/") {
		return fmt.Errorf("bind staging path %q is not under %s", m.Source, proto.BindsRoot)
	}
	st, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("bind staging path: %w", err)
	}
	switch {
	case st.IsDir():
		if err := destinationDir(m.Destination); err != nil {
			return err
		}
	case st.Mode().IsRegular():
		if err := destinationFile(m.Destination); err != nil {
			return err
		}
	default:
		return fmt.Errorf("bind staging path %s is neither a directory nor a file", src)
	}
	if err := unix.Mount(src, m.Destination, "", unix.MS_BIND, ""); err != nil {
		return privilege(err)
	}
	if m.ReadOnly {
		return remountReadOnly(m.Destination)
	}
	return nil
}

// destinationFile makes the mount point of a single-file bind.
func destinationFile(dst string) error {
	st, err := os.Stat(dst)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("%s is a directory in the image; the bind's source is a file", dst)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return err
}

// bindVolume bind-mounts the volume's directory at its destination,
// filling an empty volume from the image first (docker's copy-up).
func bindVolume(root string, m proto.Mount) error {
	if m.Source == "" || strings.Contains(m.Source, "..") {
		return fmt.Errorf("bad volume directory %q", m.Source)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return fmt.Errorf("the volume file system is not mounted at %s in this function (its service has no volume mount)", root)
	}
	src := filepath.Join(root, m.Source)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("volume directory: %w", err)
	}
	if err := destinationDir(m.Destination); err != nil {
		return err
	}
	if !m.NoCopy {
		if err := copyUp(m.Destination, src); err != nil {
			return fmt.Errorf("copy the image's files into the volume: %w", err)
		}
	}
	if err := unix.Mount(src, m.Destination, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return privilege(err)
	}
	if m.ReadOnly {
		return remountReadOnly(m.Destination)
	}
	return nil
}

// remountReadOnly makes a bind mount read-only, keeping the flags the
// kernel may lock on it (inside a user namespace they cannot be cleared).
func remountReadOnly(dst string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY)
	for _, f := range [][2]int64{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME}} {
		if st.Flags&f[0] != 0 {
			flags |= uintptr(f[1])
		}
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount read-only: %w", privilege(err))
	}
	return nil
}

// mountTmpfs mounts a tmpfs with docker's defaults (nosuid, nodev,
// noexec) and the mount's options.
func mountTmpfs(m proto.Mount) error {
	if err := destinationDir(m.Destination); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	var data []string
	if m.Options != "" {
		for _, o := range strings.Split(m.Options, ",") {
			k, _, _ := strings.Cut(o, "=")
			switch k {
			case "ro":
				flags |= unix.MS_RDONLY
			case "rw":
				flags &^= unix.MS_RDONLY
			case "exec":
				flags &^= unix.MS_NOEXEC
			case "noexec":
				flags |= unix.MS_NOEXEC
			case "suid":
				flags &^= unix.MS_NOSUID
			case "nosuid":
				flags |= unix.MS_NOSUID
			case "dev":
				flags &^= unix.MS_NODEV
			case "nodev":
				flags |= unix.MS_NODEV
			case "noatime":
				flags |= unix.MS_NOATIME
			case "strictatime":
				flags |= unix.MS_STRICTATIME
			case "nodiratime":
				flags |= unix.MS_NODIRATIME
			case "atime", "relatime", "diratime":
			case "size", "mode", "nr_inodes", "uid", "gid":
				data = append(data, o)
			default:
				return fmt.Errorf("unknown tmpfs option %q", o)
			}
		}
	}
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", m.Destination, "tmpfs", flags, strings.Join(data, ",")); err != nil {
		return privilege(err)
	}
	return nil
}

// cover hides the volume root under an empty read-only tmpfs once the
// container's volumes are bound: it holds every namespace's volumes.
func cover(root string) error {
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil // no volume file system in this function
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=000"); err != nil {
		return fmt.Errorf("cover the volume root %s: %w", root, privilege(err))
	}
	return nil
}

// destinationDir makes the mount point, which must be a directory.
func destinationDir(dst string) error {
	st, err := os.Stat(dst)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%s exists in the image and is not a directory", dst)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dst, 0o755)
	}
	return err
}

// privilege explains a refused mount.
func privilege(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: mounting needs Cloud Run's second generation execution environment (the function's service must run on gen2)", err)
	}
	return err
}

// copyUp copies the image's files at dir into the volume directory vol if
// vol is empty, with their modes and owners (docker's copy-up of a new
// volume); the volume's root takes dir's mode and owner. Owners a file
// system cannot take (Cloud Storage) are left as they come.
func copyUp(dir, vol string) error {
	if empty, err := isEmpty(vol); err != nil || !empty {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return nil
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		to := filepath.Join(vol, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case rel == ".":
		case d.IsDir():
			if err := os.Mkdir(to, info.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := copyFile(p, to, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil // devices, sockets, fifos: not copied
		}
		keepMeta(to, info)
		return nil
	})
	return err
}

// keepMeta gives to the mode, owner and times of info, where it can.
func keepMeta(to string, info fs.FileInfo) {
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		_ = os.Lchown(to, int(sys.Uid), int(sys.Gid))
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		_ = os.Chmod(to, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		_ = os.Chtimes(to, info.ModTime(), info.ModTime())
	}
}

func copyFile(from, to string, perm fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
