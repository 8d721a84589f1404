package bindsync

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pair runs a host side on hostPath and opens the agent's side in a
// fresh staging directory, returning it once the initial copy is in.
func pair(t testing.TB, hostPath string, ro bool) *Opened {
	t.Helper()
	a, b := socketPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeHost(ctx, a, Host{Path: hostPath, ReadOnly: ro, Create: true}) }()
	o, err := Open(b, Agent{Dir: filepath.Join(t.TempDir(), "staging")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		o.Close()
		cancel()
		<-done
	})
	select {
	case <-o.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("initial copy not done")
	}
	return o
}

// socketPair is a connected pair of unix sockets (buffered, as a mesh
// stream is).
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	dir, err := os.MkdirTemp("", "bs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); ch <- c }()
	c, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	return <-ch, c
}

func write(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func read(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func ctx10(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestInitialCopyAndBothWays(t *testing.T) {
	host := t.TempDir()
	write(t, filepath.Join(host, "a.txt"), "hello", 0o644)
	write(t, filepath.Join(host, "sub", "deep", "run.sh"), "#!/bin/sh\necho hi\n", 0o755)
	if err := os.Mkdir(filepath.Join(host, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	o := pair(t, host, false)
	stg := o.Session.cfg.root
	if got := read(filepath.Join(stg, "a.txt")); got != "hello" {
		t.Fatalf("a.txt = %q", got)
	}
	if info, err := os.Stat(filepath.Join(stg, "sub", "deep", "run.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("run.sh: %v %v", info, err)
	}
	if info, err := os.Stat(filepath.Join(stg, "empty")); err != nil || !info.IsDir() || info.Mode().Perm() != 0o750 {
		t.Fatalf("empty dir: %v %v", info, err)
	}
	if tgt, err := os.Readlink(filepath.Join(stg, "link")); err != nil || tgt != "/etc/passwd" {
		t.Fatalf("link: %q %v", tgt, err)
	}

	t.Run("host change visible after Pull", func(t *testing.T) {
		for i := range 50 {
			write(t, filepath.Join(host, "_temp", "step.sh"), fmt.Sprintf("step %d", i), 0o644)
			if err := o.Pull(ctx10(t)); err != nil {
				t.Fatal(err)
			}
			if got := read(filepath.Join(stg, "_temp", "step.sh")); got != fmt.Sprintf("step %d", i) {
				t.Fatalf("after pull %d: %q", i, got)
			}
		}
	})
	t.Run("container change on host after Sync", func(t *testing.T) {
		for i := range 50 {
			write(t, filepath.Join(stg, "out", "env"), fmt.Sprintf("X=%d", i), 0o600)
			if err := o.Sync(ctx10(t)); err != nil {
				t.Fatal(err)
			}
			if got := read(filepath.Join(host, "out", "env")); got != fmt.Sprintf("X=%d", i) {
				t.Fatalf("after sync %d: %q", i, got)
			}
		}
	})
	t.Run("deletes renames modes", func(t *testing.T) {
		if err := os.Rename(filepath.Join(stg, "a.txt"), filepath.Join(stg, "b.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(stg, "sub")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(stg, "out", "env"), 0o751); err != nil {
			t.Fatal(err)
		}
		if err := o.Sync(ctx10(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(host, "a.txt")); !os.IsNotExist(err) {
			t.Fatalf("a.txt still on host: %v", err)
		}
		if got := read(filepath.Join(host, "b.txt")); got != "hello" {
			t.Fatalf("b.txt = %q", got)
		}
		if _, err := os.Lstat(filepath.Join(host, "sub")); !os.IsNotExist(err) {
			t.Fatalf("sub still on host: %v", err)
		}
		if info, err := os.Stat(filepath.Join(host, "out", "env")); err != nil || info.Mode().Perm() != 0o751 {
			t.Fatalf("mode on host: %v %v", info, err)
		}
	})
	t.Run("symlinks are never followed out of the bind", func(t *testing.T) {
		outside := t.TempDir()
		if err := os.Symlink(outside, filepath.Join(stg, "esc")); err != nil {
			t.Fatal(err)
		}
		if err := o.Sync(ctx10(t)); err != nil {
			t.Fatal(err)
		}
		// The container writes through its link: in the staging tree that
		// lands in outside (the agent's own business); the host must only
		// have the link.
		write(t, filepath.Join(stg, "esc", "pwned"), "x", 0o644)
		if err := o.Sync(ctx10(t)); err != nil {
			t.Fatal(err)
		}
		if tgt, err := os.Readlink(filepath.Join(host, "esc")); err != nil || tgt != outside {
			t.Fatalf("host link: %q %v", tgt, err)
		}
	})
}

func TestSingleFileAndReadOnly(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config.ini")
	write(t, f, "v=1", 0o644)
	write(t, filepath.Join(dir, "other"), "not synced", 0o644)
	o := pair(t, f, false)
	if o.Kind != KindFile || read(o.File) != "v=1" {
		t.Fatalf("kind %s, file %q", o.Kind, read(o.File))
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(o.File), "other")); !os.IsNotExist(err) {
		t.Fatal("a sibling of a single-file bind was copied")
	}
	write(t, f, "v=2", 0o644)
	if err := o.Pull(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if got := read(o.File); got != "v=2" {
		t.Fatalf("after pull %q", got)
	}
	write(t, o.File, "v=3", 0o644)
	if err := o.Sync(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if got := read(f); got != "v=3" {
		t.Fatalf("host after sync %q", got)
	}

	ro := t.TempDir()
	write(t, filepath.Join(ro, "keep"), "host", 0o644)
	r := pair(t, ro, true)
	write(t, filepath.Join(r.cfg.root, "keep"), "changed in the staging tree", 0o644)
	if err := r.Sync(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(ro, "keep")); got != "host" {
		t.Fatalf("a read-only bind was written back: %q", got)
	}
}

// BenchmarkInitialCopy: the protocol alone (a unix socket between the two
// sides) on a 10,000-file, 200 MB tree.
func BenchmarkInitialCopy(b *testing.B) {
	host := b.TempDir()
	buf := make([]byte, 20*1024)
	for i := range 10000 {
		p := filepath.Join(host, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%05d", i))
		if i%100 == 0 {
			os.MkdirAll(filepath.Dir(p), 0o755)
		}
		buf[0] = byte(i)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		pair(b, host, false)
		b.ReportMetric(200/time.Since(start).Seconds(), "MB/s")
	}
}

// TestReopenCarriesChangesOfBothSides: the stream ends (a control plane
// restart), both sides change the tree, and the next session, opened with
// the previous one's State, carries both sides' changes and deletions.
func TestReopenCarriesChangesOfBothSides(t *testing.T) {
	host := t.TempDir()
	write(t, filepath.Join(host, "keep"), "same", 0o644)
	write(t, filepath.Join(host, "hostchange"), "v1", 0o644)
	write(t, filepath.Join(host, "hostdel"), "x", 0o644)
	write(t, filepath.Join(host, "ctrchange"), "v1", 0o644)
	write(t, filepath.Join(host, "ctrdel"), "x", 0o644)
	stg := filepath.Join(t.TempDir(), "staging")
	open := func(prev *State) *Opened {
		a, b := socketPair(t)
		go ServeHost(context.Background(), a, Host{Path: host})
		o, err := Open(b, Agent{Dir: stg, Prev: prev})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-o.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("initial copy not done")
		}
		return o
	}
	o := open(nil)
	o.Close() // the stream ends
	prev := o.State()
	write(t, filepath.Join(host, "hostchange"), "v2", 0o644)
	os.Remove(filepath.Join(host, "hostdel"))
	write(t, filepath.Join(stg, "ctrchange"), "v2", 0o644)
	os.Remove(filepath.Join(stg, "ctrdel"))
	write(t, filepath.Join(stg, "ctrnew"), "new", 0o644)

	n := open(prev)
	defer n.Close()
	if err := n.Sync(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{host, stg} {
		for name, want := range map[string]string{"keep": "same", "hostchange": "v2", "ctrchange": "v2", "ctrnew": "new", "hostdel": "<missing>", "ctrdel": "<missing>"} {
			got := read(filepath.Join(dir, name))
			if strings.HasPrefix(got, "<") {
				got = "<missing>"
			}
			if got != want {
				t.Errorf("%s/%s = %q, want %q", dir, name, got, want)
			}
		}
	}
}
