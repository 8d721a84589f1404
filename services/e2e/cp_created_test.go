package e2e

import (
	"archive/tar"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// createdScenario runs docker cp into and out of a container that was
// created and never started, then starts it, and returns what a user sees,
// with the container's ID taken out, so Sockerless and Docker compare.
func createdScenario(t *testing.T, host, name, src string) map[string]string {
	t.Helper()
	got := map[string]string{}
	id := strings.TrimSpace(mustDocker(t, host, "create", "--name", name, "busybox", "sh", "-c", "cat /tmp/in/hello /tmp/second; ls -l /tmp/in/link | sed 's/.*-> //'"))
	defer docker(t, host, "rm", "-f", name)
	scrub := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, id, "ID"), name, "NAME") }

	// Out of the image: a tar of /etc/passwd on stdout.
	got["passwd entries"] = tarNames(t, mustDocker(t, host, "cp", name+":/etc/passwd", "-"))
	// Into it, twice; the second upload lands next to the first.
	mustDocker(t, host, "cp", filepath.Join(src, "in"), name+":/tmp/")
	mustDocker(t, host, "cp", filepath.Join(src, "second"), name+":/tmp/second")
	// What was uploaded reads back before the start.
	back := filepath.Join(t.TempDir(), "back")
	mustDocker(t, host, "cp", name+":/tmp/in", back)
	hello, err := os.ReadFile(filepath.Join(back, "hello"))
	got["hello back"] = fmt.Sprintf("%q %v", hello, err)
	fi, err := os.Stat(filepath.Join(back, "hello"))
	if err == nil {
		got["hello mode mtime"] = fmt.Sprint(fi.Mode(), " ", fi.ModTime().UTC().Format(time.RFC3339))
	}
	l, _ := os.Readlink(filepath.Join(back, "link"))
	got["link back"] = l
	got["tmp entries"] = tarNames(t, mustDocker(t, host, "cp", name+":/tmp", "-"))
	// Errors, as docker words them.
	for _, bad := range []struct {
		key  string
		args []string
	}{
		{"missing source", []string{"cp", name + ":/nope", back + "2"}},
		{"missing destination", []string{"cp", filepath.Join(src, "second"), name + ":/nonexist/"}},
	} {
		r := docker(t, host, bad.args...)
		// Without the CLI's own log lines (a racy broken pipe).
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if !strings.Contains(l, "level=error") {
				lines = append(lines, l)
			}
		}
		got[bad.key] = fmt.Sprint(r.code, " ", scrub(strings.Join(lines, "\n")))
	}
	// The process sees the files: they were in place before it started.
	mustDocker(t, host, "start", "-a", name)
	got["process output"] = mustDocker(t, host, "logs", name)
	return got
}

// tarNames lists a tar stream's entry names and modes, sorted.
func tarNames(t *testing.T, s string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(s))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not a tar (%v): %q", err, s[:min(len(s), 80)])
		}
		names = append(names, fmt.Sprintf("%s %o", h.Name, h.Mode&0o7777))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func TestCopyCreatedContainer(t *testing.T) {
	s := requireStack(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "in"), 0o755)
	mt := time.Unix(1600000000, 0)
	os.WriteFile(filepath.Join(src, "in", "hello"), []byte("hello from cp\n"), 0o640)
	os.Chtimes(filepath.Join(src, "in", "hello"), mt, mt)
	os.Symlink("hello", filepath.Join(src, "in", "link"))
	os.WriteFile(filepath.Join(src, "second"), []byte("second upload\n"), 0o600)

	want := map[string]string{
		"hello back":       fmt.Sprintf("%q <nil>", "hello from cp\n"),
		"hello mode mtime": "-rw-r----- 2020-09-13T12:26:40Z",
		"link back":        "hello",
		"process output":   "hello from cp\nsecond upload\nhello\n",
		"passwd entries":   "passwd 644",
	}
	var reference map[string]string
	if loadReference(t) == nil {
		reference = createdScenario(t, referenceDocker, "cp-created-ref", src)
	}
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			got := createdScenario(t, h.host, "cp-created-"+h.name, src)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if !strings.Contains(got["missing source"], "Could not find the file /nope in container NAME") ||
				got["missing destination"] != "1 no such directory" { // the CLI's words after a 404 stat
				t.Errorf("errors: %q / %q", got["missing source"], got["missing destination"])
			}
			if reference != nil {
				for k, v := range reference {
					if got[k] != v {
						t.Errorf("differs from docker: %s = %q, docker says %q", k, got[k], v)
					}
				}
			}
		})
	}
}

// The HEAD stat of a never-started container's path is docker's.
func TestCopyCreatedContainerStat(t *testing.T) {
	s := requireStack(t)
	name := "cp-created-stat"
	mustDocker(t, s.direct, "create", "--name", name, "busybox", "true")
	defer docker(t, s.direct, "rm", "-f", name)
	for _, tc := range []struct {
		path string
		code int
	}{{"/etc/passwd", 200}, {"/etc", 200}, {"/nope", 404}} {
		resp, _ := s.apiRequest(t, "HEAD", "/containers/"+name+"/archive?path="+tc.path, nil, true)
		if resp.StatusCode != tc.code {
			t.Errorf("HEAD %s: %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		if tc.code == 200 && resp.Header.Get("X-Docker-Container-Path-Stat") == "" {
			t.Errorf("HEAD %s: no stat header", tc.path)
		}
	}
}

// sha256File returns the hex SHA-256 of a file.
func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeRandomFile writes n random bytes to path, 1 MiB at a time.
func writeRandomFile(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		t.Fatal(err)
	}
}
