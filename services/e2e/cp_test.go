package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCopyBothWays(t *testing.T) {
	s := requireStack(t)
	local := t.TempDir()
	src := filepath.Join(local, "in")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 2<<20)
	rand.Read(blob)
	mt := time.Unix(1600000000, 0)
	os.WriteFile(filepath.Join(src, "sub", "blob"), blob, 0o640)
	os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.Symlink("run.sh", filepath.Join(src, "link"))
	os.Chtimes(filepath.Join(src, "run.sh"), mt, mt)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			name := "cp-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo made > /tmp/made; sleep 300")
			defer docker(t, h.host, "rm", "-f", name)
			waitFor(t, func() bool { return docker(t, h.host, "exec", name, "cat", "/tmp/made").stdout == "made\n" })
			mustDocker(t, h.host, "cp", src, name+":/tmp/")
			if out := mustDocker(t, h.host, "exec", name, "sh", "-c", "stat -c '%a %s' /tmp/in/sub/blob /tmp/in/run.sh; readlink /tmp/in/link; /tmp/in/run.sh"); out != "640 2097152\n755 18\nrun.sh\nhi\n" {
				t.Fatalf("after cp in: %q", out)
			}
			back := filepath.Join(t.TempDir(), "out")
			mustDocker(t, h.host, "cp", name+":/tmp/in", back)
			got, err := os.ReadFile(filepath.Join(back, "sub", "blob"))
			if err != nil || !bytes.Equal(got, blob) {
				t.Fatalf("blob came back with %d bytes, %v", len(got), err)
			}
			if fi, err := os.Stat(filepath.Join(back, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(mt) {
				t.Fatalf("run.sh came back as %v %v, %v", fi.Mode(), fi.ModTime(), err)
			}
			if l, _ := os.Readlink(filepath.Join(back, "link")); l != "run.sh" {
				t.Fatalf("link came back as %q", l)
			}
			tarOut := mustDocker(t, h.host, "cp", name+":/tmp/made", "-")
			if !strings.Contains(tarOut, "made\n") || !strings.HasPrefix(tarOut, "made") {
				t.Fatalf("cp to - is not a tar of made: %q", tarOut[:min(len(tarOut), 80)])
			}
			r := docker(t, h.host, "cp", name+":/nope", back)
			if r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nope") {
				t.Fatalf("cp of a missing path: %d %q", r.code, r.stderr)
			}
		})
	}
}

func TestCopyOutOfAnExitedContainer(t *testing.T) {
	s := requireStack(t)
	name := "cp-exited"
	mustDocker(t, s.direct, "run", "--name", name, "busybox", "sh", "-c", "echo artifact > /tmp/result")
	defer docker(t, s.direct, "rm", "-f", name)
	dst := filepath.Join(t.TempDir(), "result")
	mustDocker(t, s.direct, "cp", name+":/tmp/result", dst)
	if b, err := os.ReadFile(dst); err != nil || string(b) != "artifact\n" {
		t.Fatalf("artifact = %q, %v", b, err)
	}
}

// A client that stops reading for seconds while the process writes fast
// still gets every byte, in order: nothing is dropped on back-pressure.
func TestSlowReaderLosesNothing(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			cmd := exec.Command("docker", "run", "--rm", "busybox", "seq", "1", "300000")
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+h.host, "DOCKER_CONFIG="+dockerConfigDir(t))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second) // the pipe fills; the CLI and the stream stall
			got, err := io.ReadAll(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			var want bytes.Buffer
			for i := 1; i <= 300000; i++ {
				fmt.Fprintf(&want, "%d\n", i)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("got %d bytes, want %d in order", len(got), want.Len())
			}
		})
	}
}
