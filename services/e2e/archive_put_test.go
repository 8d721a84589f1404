package e2e

import (
	"archive/tar"
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// tarOf makes a tar of entries (name → content; a value "->target" makes a
// symlink, "=>target" a hard link).
func tarOf(t testing.TB, entries [][2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		switch {
		case strings.HasPrefix(e[1], "->"):
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e[1][2:], 0, 0o777
		case strings.HasPrefix(e[1], "=>"):
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e[1][2:], 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(e[1]))
		}
	}
	_ = tw.Close()
	return b.Bytes()
}

// compress pipes b through a compressor command (gzip, bzip2, xz).
func compress(t testing.TB, tool string, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed", tool)
	}
	cmd := exec.Command(tool, "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

// PUT archive takes a tar compressed with gzip, bzip2 or xz, into a
// running container and into one never started, as Docker does.
func TestPutArchiveCompressed(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			running := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}})
			created := h.create(t, "", map[string]any{"Cmd": []string{"sh", "-c", "cat /tmp/f-gzip /tmp/f-bzip2 /tmp/f-xz"}})
			for _, tool := range []string{"gzip", "bzip2", "xz"} {
				body := compress(t, tool, tarOf(t, [][2]string{{"f-" + tool, tool + "\n"}}))
				for _, id := range []string{running, created} {
					h.must(t, http.StatusOK, "PUT", "/containers/"+id+"/archive?path=/tmp", body, nil)
				}
				_, b := h.call(t, "GET", "/containers/"+running+"/archive?path=/tmp/f-"+tool, nil)
				if !strings.Contains(string(b), tool+"\n") {
					t.Errorf("%s into a running container: read back %q", tool, b)
				}
			}
			h.must(t, http.StatusNoContent, "POST", "/containers/"+created+"/start", nil, nil)
			h.must(t, http.StatusOK, "POST", "/containers/"+created+"/wait", nil, nil)
			_, logs := h.call(t, "GET", "/containers/"+created+"/logs?stdout=1&stderr=1", nil)
			for _, tool := range []string{"gzip", "bzip2", "xz"} {
				if !strings.Contains(string(logs), tool+"\n") {
					t.Errorf("created container's files: %q lacks %s", logs, tool)
				}
			}
		})
	}
}

// A bad upload into a never-started container is refused at once and the
// container stays usable; a symlink the upload makes is never written
// through by its later entries.
func TestPutArchiveRefusesBadUploads(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			bad := []struct {
				name string
				body []byte
			}{
				{"not a tar", []byte("this is not a tar archive, not at all\n")},
				{"a hard link to a missing file", tarOf(t, [][2]string{{"hl", "=>missing/file"}})},
			}
			for _, target := range []string{"created", "running"} {
				id := h.create(t, "", map[string]any{"Cmd": []string{"sh", "-c", "cat /tmp/good; sleep 300"}})
				if target == "running" {
					h.must(t, http.StatusOK, "PUT", "/containers/"+id+"/archive?path=/tmp", tarOf(t, [][2]string{{"good", "good\n"}}), nil)
					h.must(t, http.StatusNoContent, "POST", "/containers/"+id+"/start", nil, nil)
				}
				for _, b := range bad {
					code, msg := h.call(t, "PUT", "/containers/"+id+"/archive?path=/tmp", b.body)
					// The Docker engine answers these with 500.
					if code != http.StatusBadRequest && !(h.name == "docker" && code == http.StatusInternalServerError) || !strings.Contains(string(msg), "Error processing tar file") {
						t.Errorf("%s, %s: %d %s", target, b.name, code, msg)
					}
				}
				if target == "created" {
					h.must(t, http.StatusOK, "PUT", "/containers/"+id+"/archive?path=/tmp", tarOf(t, [][2]string{{"good", "good\n"}}), nil)
					h.must(t, http.StatusNoContent, "POST", "/containers/"+id+"/start", nil, nil)
				}
				h.pollState(t, id, "running", func(st map[string]any) bool { return st["Running"] == true })
				_, b := h.call(t, "GET", "/containers/"+id+"/archive?path=/tmp/good", nil)
				if !strings.Contains(string(b), "good\n") {
					t.Errorf("%s: the container is not usable after a bad upload: %q", target, b)
				}
			}
			if h.name == "docker" {
				return // the engine writes through the link inside its chroot
			}
			id := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}})
			code, msg := h.call(t, "PUT", "/containers/"+id+"/archive?path=/tmp", tarOf(t, [][2]string{{"x", "->/etc"}, {"x/owned", "owned\n"}}))
			if code != http.StatusBadRequest || !strings.Contains(string(msg), "beneath the symlink") {
				t.Errorf("symlink then a path through it: %d %s", code, msg)
			}
			if code, _ := h.call(t, "HEAD", "/containers/"+id+"/archive?path=/etc/owned", nil); code != http.StatusNotFound {
				t.Errorf("/etc/owned: %d, want 404: the upload wrote through its own symlink", code)
			}
		})
	}
}
