package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// imageTree makes a small image root and returns its index, as the
// control plane would read it from the image's layers.
func imageTree(t *testing.T) (string, *Index) {
	t.Helper()
	root := t.TempDir()
	mt := time.Unix(1600000000, 0)
	for _, d := range []string{"bin", "etc", "proc", "data", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"bin/busybox": "BB", "bin/ls": "BB", "etc/passwd": "root:x:0:0\n", "etc/group": "root:x:0:\n", "etc/hosts": "127.0.0.1 localhost\n"}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() && fi.Mode()&os.ModeSymlink == 0 {
			_ = os.Chtimes(p, mt, mt)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		e := proto.FileEntry{Path: rel, Mode: st.Mode & (syscall.S_IFMT | 0o7777), UID: int(st.Uid), GID: int(st.Gid)}
		if fi.Mode().IsRegular() {
			e.Size, e.Mtime = fi.Size(), mt.UnixNano()
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			e.Link, _ = os.Readlink(p)
		}
		return enc.Encode(e)
	})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ReadIndex(&lines)
	if err != nil {
		t.Fatal(err)
	}
	return root, idx
}

func TestChangesAsDockerDiffReportsThem(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		change func(root string)
		want   []proto.Change
	}{
		{"an untouched tree has no changes", func(string) {}, nil},
		{"a new file is added and its directory modified", func(root string) {
			must(os.WriteFile(filepath.Join(root, "test"), nil, 0o644))
			must(os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
			must(os.WriteFile(filepath.Join(root, "a", "b", "c"), []byte("123"), 0o644))
			must(os.WriteFile(filepath.Join(root, "etc", "new"), []byte("x"), 0o644))
		}, []proto.Change{
			{Path: "/a", Kind: 1}, {Path: "/a/b", Kind: 1}, {Path: "/a/b/c", Kind: 1, Size: 3},
			{Path: "/etc", Kind: 0}, {Path: "/etc/new", Kind: 1, Size: 1}, {Path: "/test", Kind: 1},
		}},
		{"a rewritten file, a chmod and a deletion", func(root string) {
			must(os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("x\n"), 0o644))
			must(os.Chmod(filepath.Join(root, "etc", "group"), 0o600))
			must(os.Remove(filepath.Join(root, "bin", "ls")))
		}, []proto.Change{
			{Path: "/bin", Kind: 0}, {Path: "/bin/ls", Kind: 2},
			{Path: "/etc", Kind: 0}, {Path: "/etc/group", Kind: 0, Size: 10}, {Path: "/etc/passwd", Kind: 0, Size: 2},
		}},
		{"a retargeted symlink is modified", func(root string) {
			must(os.Remove(filepath.Join(root, "bin", "sh")))
			must(os.Symlink("ls", filepath.Join(root, "bin", "sh")))
		}, []proto.Change{{Path: "/bin", Kind: 0}, {Path: "/bin/sh", Kind: 0}}},
		{"mounts, the agent's files and docker's managed files are left out", func(root string) {
			must(os.WriteFile(filepath.Join(root, "proc", "1"), nil, 0o644))
			must(os.WriteFile(filepath.Join(root, "data", "volume-file"), nil, 0o644))
			must(os.MkdirAll(filepath.Join(root, ".sockerless"), 0o755))
			must(os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("changed"), 0o644))
			must(os.Remove(filepath.Join(root, "tmp")))
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, idx := imageTree(t)
			c.change(root)
			tree := &Tree{Root: root, Mounts: map[string]bool{"/proc": true, "/data": true, "/tmp": true},
				Skip: []string{"/.sockerless", "/etc/hosts"}}
			got, err := tree.Changes(idx)
			must(err)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("changes\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestWriteLayerHoldsChangesAndWhiteouts(t *testing.T) {
	root, idx := imageTree(t)
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "bin", "ls")); err != nil {
		t.Fatal(err)
	}
	tree := &Tree{Root: root}
	changes, err := tree.Changes(idx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tree.WriteLayer(&buf, changes); err != nil {
		t.Fatal(err)
	}
	got := tarEntries(t, &buf)
	want := []string{"bin/", "bin/.wh.ls", "etc/", "etc/passwd=x\n"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layer %q, want %q", got, want)
	}
}

func TestExportLeavesMountsEmptyAndSkipsTheAgent(t *testing.T) {
	root, _ := imageTree(t)
	if err := os.WriteFile(filepath.Join(root, "proc", "1"), []byte("p"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, ".sockerless"), 0o755); err != nil {
		t.Fatal(err)
	}
	tree := &Tree{Root: root, Mounts: map[string]bool{"/proc": true}, Skip: []string{"/.sockerless"}}
	var buf bytes.Buffer
	if err := tree.Export(&buf); err != nil {
		t.Fatal(err)
	}
	got := tarEntries(t, &buf)
	want := []string{"bin/", "bin/busybox=BB", "bin/ls=BB", "bin/sh->busybox", "data/", "etc/", "etc/group=root:x:0:\n",
		"etc/hosts=127.0.0.1 localhost\n", "etc/passwd=root:x:0:0\n", "proc/", "tmp/"}
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("export %q, want %q", got, want)
	}
}

func TestParseMountinfoUnescapes(t *testing.T) {
	in := "22 1 0:21 / / rw - overlay overlay rw\n" +
		"23 22 0:22 / /proc rw - proc proc rw\n" +
		"24 22 0:23 / /my\\040data rw - tmpfs tmpfs rw\n"
	got, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"/proc": true, "/my data": true}; !reflect.DeepEqual(got, want) {
		t.Fatalf("mounts %v, want %v", got, want)
	}
}

// tarEntries lists a tar as "name", "name=content" for files and
// "name->target" for symlinks.
func tarEntries(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e := h.Name
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			if len(b) > 0 {
				e += "=" + string(b)
			}
		case tar.TypeSymlink:
			e += "->" + h.Linkname
		}
		out = append(out, e)
	}
}
