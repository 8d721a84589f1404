package instances

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

type entry struct {
	h    tar.Header
	body string
}

func tarOf(t *testing.T, entries []entry) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		h.Size = int64(len(e.body))
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return bytes.NewReader(buf.Bytes())
}

func TestExtract(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	err := extract(tarOf(t, []entry{
		// Upper layers first, as mutate.Extract writes: a file before its dir.
		{h: tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/tool", Mode: 0o4755, Uid: 1, Gid: 2}, body: "tool"},
		{h: tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o750}},
		{h: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin", Linkname: "usr/bin"}},
		{h: tar.Header{Typeflag: tar.TypeLink, Name: "usr/bin/alias", Linkname: "usr/bin/tool"}},
		{h: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{h: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}},
		{h: tar.Header{Typeflag: tar.TypeSymlink, Name: "escape", Linkname: outside}},
		{h: tar.Header{Typeflag: tar.TypeReg, Name: "escape/pwned", Mode: 0o644}, body: "x"},
		{h: tar.Header{Typeflag: tar.TypeReg, Name: "../../pwned", Mode: 0o644}, body: "x"},
	}), dir)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	tests := []struct {
		name  string
		check func() bool
	}{
		{"a regular file keeps content and setuid mode", func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "usr/bin/tool"))
			fi, err := os.Stat(filepath.Join(dir, "usr/bin/tool"))
			return err == nil && string(b) == "tool" && fi.Mode().Perm() == 0o755 && fi.Mode()&fs.ModeSetuid != 0
		}},
		{"owners are kept", func() bool {
			if os.Geteuid() != 0 {
				return true
			}
			fi, err := os.Stat(filepath.Join(dir, "usr/bin/tool"))
			st := fi.Sys().(*syscall.Stat_t)
			return err == nil && st.Uid == 1 && st.Gid == 2
		}},
		{"a directory met after its content gets its mode", func() bool {
			fi, err := os.Stat(filepath.Join(dir, "usr"))
			return err == nil && fi.Mode().Perm() == 0o750
		}},
		{"the sticky bit is kept", func() bool {
			fi, err := os.Stat(filepath.Join(dir, "tmp"))
			return err == nil && fi.Mode()&fs.ModeSticky != 0
		}},
		{"a symlink stays a symlink", func() bool {
			l, err := os.Readlink(filepath.Join(dir, "bin"))
			return err == nil && l == "usr/bin"
		}},
		{"a hard link shares the inode", func() bool {
			a, err1 := os.Stat(filepath.Join(dir, "usr/bin/tool"))
			b, err2 := os.Stat(filepath.Join(dir, "usr/bin/alias"))
			return err1 == nil && err2 == nil && os.SameFile(a, b)
		}},
		{"a fifo is made", func() bool {
			fi, err := os.Lstat(filepath.Join(dir, "run/fifo"))
			return err == nil && fi.Mode()&fs.ModeNamedPipe != 0
		}},
		{"nothing is written through a symlink out of the root", func() bool {
			_, err := os.Stat(filepath.Join(outside, "pwned"))
			return os.IsNotExist(err)
		}},
		{"a dot-dot name stays inside the root", func() bool {
			_, err := os.Stat(filepath.Join(dir, "pwned"))
			_, err2 := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(dir)), "pwned"))
			return err == nil && os.IsNotExist(err2)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.check() {
				t.Error("check failed")
			}
		})
	}

	t.Run("a copied tree matches the original", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "copy")
		if err := copyTree(dir, dst); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"usr/bin/tool", "usr", "tmp", "bin", "run/fifo"} {
			a, err1 := os.Lstat(filepath.Join(dir, p))
			b, err2 := os.Lstat(filepath.Join(dst, p))
			if err1 != nil || err2 != nil || a.Mode() != b.Mode() {
				t.Errorf("%s: mode %v vs %v (%v %v)", p, a.Mode(), b.Mode(), err1, err2)
			}
		}
		if l, _ := os.Readlink(filepath.Join(dst, "bin")); l != "usr/bin" {
			t.Errorf("copied symlink points to %q", l)
		}
	})
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	tests := []struct {
		user     string
		uid, gid uint32
		home     string
		wantErr  bool
	}{
		{"", 0, 0, "/root", false},
		{"app", 1000, 1001, "/home/app", false},
		{"1000", 1000, 1001, "/home/app", false},
		{"2000", 2000, 0, "/", false},
		{"app:staff", 1000, 50, "/home/app", false},
		{"2000:3000", 2000, 3000, "/", false},
		{"ghost", 0, 0, "", true},
		{"app:ghosts", 0, 0, "", true},
	}
	for _, tc := range tests {
		t.Run("user "+tc.user, func(t *testing.T) {
			u, home, err := resolveUser(root, tc.user)
			if tc.wantErr {
				if err == nil {
					t.Errorf("resolved %+v, want an error", u)
				}
				return
			}
			if err != nil || u.UID != tc.uid || u.GID != tc.gid || home != tc.home {
				t.Errorf("got %+v %q %v, want %d:%d %q", u, home, err, tc.uid, tc.gid, tc.home)
			}
		})
	}
	t.Run("a passwd symlinked out of the rootfs is not read", func(t *testing.T) {
		evil := t.TempDir()
		os.MkdirAll(filepath.Join(evil, "etc"), 0o755)
		os.Symlink("/etc/passwd", filepath.Join(evil, "etc/passwd"))
		if _, _, err := resolveUser(evil, "root"); err == nil {
			t.Error("resolved a user through a symlink to the host's passwd")
		}
	})
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("got %q", got)
	}
}
