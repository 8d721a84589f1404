package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteExtractRoundTripKeepsModesLinksAndTimes(t *testing.T) {
	src := t.TempDir()
	d := filepath.Join(src, "data")
	mt := time.Unix(1600000000, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "sub"), 0o750))
	must(os.WriteFile(filepath.Join(d, "sub", "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(d, "note"), []byte("hello"), 0o600))
	must(os.Symlink("note", filepath.Join(d, "link")))
	must(os.Chtimes(filepath.Join(d, "note"), mt, mt))

	var buf bytes.Buffer
	must(Write(&buf, d))
	dst := t.TempDir()
	must(Extract(&buf, dst))

	check := func(rel string, mode os.FileMode, content string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, "data", rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Fatalf("%s mode %v, want %v", rel, fi.Mode().Perm(), mode)
		}
		if content != "" {
			b, _ := os.ReadFile(filepath.Join(dst, "data", rel))
			if string(b) != content {
				t.Fatalf("%s = %q", rel, b)
			}
		}
	}
	check("sub", 0o750, "")
	check("sub/run.sh", 0o755, "#!/bin/sh\n")
	check("note", 0o600, "hello")
	if target, err := os.Readlink(filepath.Join(dst, "data", "link")); err != nil || target != "note" {
		t.Fatalf("link -> %q, %v", target, err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "data", "note")); !fi.ModTime().Equal(mt) {
		t.Fatalf("mtime %v, want %v", fi.ModTime(), mt)
	}
}

func TestStat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("abc"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := Stat(p)
	if err != nil || st.Name != "f" || st.Size != 3 || st.Mode.Perm() != 0o640 {
		t.Fatalf("stat %+v %v", st, err)
	}
	if _, err := Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing: %v", err)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	var buf bytes.Buffer
	// A hand-made tar with "../evil" is normalised into the destination.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(&buf, filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if err := Extract(&buf, filepath.Join(dir, "nope")); err == nil {
		t.Fatal("extract into a missing directory succeeded")
	}
}
