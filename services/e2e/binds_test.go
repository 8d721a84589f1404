package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Host bind mounts (-v /host/dir:/ctr, --mount type=bind): synced by the
// --dev control plane for its socket's clients and by the forwarder for
// its own; the same scenarios run on the machine's Docker engine.

func writeFile(t testing.TB, p, content string, mode os.FileMode) {
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

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "<missing>"
	}
	return string(b)
}

func TestBindMounts(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a.txt"), "hello from the host\n", 0o644)
			writeFile(t, filepath.Join(dir, "sub", "run.sh"), "#!/bin/sh\necho ran\n", 0o755)
			writeFile(t, filepath.Join(dir, "del"), "x", 0o644)
			writeFile(t, filepath.Join(dir, "ren1"), "renamed", 0o644)
			if err := os.Mkdir(filepath.Join(dir, "empty"), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}

			t.Run("files on the host are there before the process starts", func(t *testing.T) {
				out := mustDocker(t, h.host, "run", "--rm", "-v", dir+":/w", "busybox", "sh", "-c",
					"cat /w/a.txt; /w/sub/run.sh; stat -c '%a %F' /w/empty; readlink /w/link; cat /w/link")
				want := "hello from the host\nran\n750 directory\na.txt\nhello from the host\n"
				if out != want {
					t.Fatalf("got %q, want %q", out, want)
				}
			})
			t.Run("what the container wrote is on the host when docker run returns", func(t *testing.T) {
				mustDocker(t, h.host, "run", "--rm", "-v", dir+":/w", "busybox", "sh", "-c",
					"echo out > /w/out.txt && mkdir -p /w/newdir/empty2 && ln -s out.txt /w/lnk2 && rm /w/del && mv /w/ren1 /w/ren2 && chmod 700 /w/sub/run.sh")
				if got := readFile(filepath.Join(dir, "out.txt")); got != "out\n" {
					t.Errorf("out.txt = %q", got)
				}
				if st, err := os.Stat(filepath.Join(dir, "newdir", "empty2")); err != nil || !st.IsDir() {
					t.Errorf("empty directory not made on the host: %v", err)
				}
				if tgt, err := os.Readlink(filepath.Join(dir, "lnk2")); err != nil || tgt != "out.txt" {
					t.Errorf("symlink on the host: %q %v", tgt, err)
				}
				if _, err := os.Lstat(filepath.Join(dir, "del")); !os.IsNotExist(err) {
					t.Errorf("deleted file still on the host: %v", err)
				}
				if readFile(filepath.Join(dir, "ren2")) != "renamed" || readFile(filepath.Join(dir, "ren1")) != "<missing>" {
					t.Errorf("rename not carried: ren1 %q ren2 %q", readFile(filepath.Join(dir, "ren1")), readFile(filepath.Join(dir, "ren2")))
				}
				if st, err := os.Stat(filepath.Join(dir, "sub", "run.sh")); err != nil || st.Mode().Perm() != 0o700 {
					t.Errorf("mode on the host: %v %v", st, err)
				}
			})
			t.Run("read-only bind", func(t *testing.T) {
				r := docker(t, h.host, "run", "--rm", "-v", dir+":/r:ro", "busybox", "sh", "-c", "cat /r/a.txt; echo x > /r/new")
				if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "Read-only file system") || !strings.HasPrefix(r.stdout, "hello from the host") {
					t.Fatalf("exit %d, stdout %q, stderr %q; want a failed write (EROFS)", r.code, r.stdout, r.stderr)
				}
				if _, err := os.Lstat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
					t.Fatalf("a read-only bind was written back: %v", err)
				}
			})
			t.Run("single-file bind with --mount", func(t *testing.T) {
				f := filepath.Join(t.TempDir(), "app.conf")
				writeFile(t, f, "v=1\n", 0o644)
				out := mustDocker(t, h.host, "run", "--rm", "--mount", "type=bind,src="+f+",dst=/etc/app.conf", "busybox", "sh", "-c",
					"cat /etc/app.conf; echo v=2 > /etc/app.conf")
				if out != "v=1\n" {
					t.Fatalf("got %q", out)
				}
				if got := readFile(f); got != "v=2\n" {
					t.Fatalf("host file after the run: %q", got)
				}
			})
			t.Run("host writes seen by the process after an attach", func(t *testing.T) {
				name := uniq("bind-attach")
				mustDocker(t, h.host, "run", "-d", "-i", "--name", name, "-v", dir+":/w", "busybox", "sh", "-c", "read f; cat /w/$f; echo back > /w/attach.out; sleep 1")
				defer docker(t, h.host, "rm", "-f", name)
				// stdin stays open until the answer is in: Docker ends an
				// attach's output when its input ends.
				cmd := exec.Command("docker", "attach", name)
				cmd.Env = append(os.Environ(), "DOCKER_HOST="+h.host, "DOCKER_CONFIG="+dockerConfigDir(t), "DOCKER_CLI_HINTS=false")
				in, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "attach.in"), "written just before the attach\n", 0o644)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond) // attached
				if _, err := in.Write([]byte("attach.in\n")); err != nil {
					t.Fatal(err)
				}
				line := make(chan string, 1)
				go func() { l, _ := bufio.NewReader(out).ReadString('\n'); line <- l }()
				select {
				case l := <-line:
					if l != "written just before the attach\n" {
						t.Fatalf("attach read %q", l)
					}
				case <-time.After(60 * time.Second):
					t.Fatal("no answer through the attach")
				}
				in.Close()
				_ = cmd.Wait()
				if got := readFile(filepath.Join(dir, "attach.out")); got != "back\n" {
					t.Fatalf("the container's write when its attach ended: %q", got)
				}
			})
			t.Run("host writes seen by the next exec, exec writes on the host when it returns", func(t *testing.T) {
				name := uniq("bind")
				mustDocker(t, h.host, "run", "-d", "--name", name, "-v", dir+":/w", "busybox", "sleep", "600")
				defer docker(t, h.host, "rm", "-f", name)
				// Input sent while the exec waits for its barrier is kept.
				if r := dockerIn(t, h.host, []byte("piped in\n"), "exec", "-i", name, "sh", "-c", "cat > /w/piped; cat /w/piped"); r.stdout != "piped in\n" || readFile(filepath.Join(dir, "piped")) != "piped in\n" {
					t.Fatalf("exec -i: exit %d, stdout %q, stderr %q; on the host %q", r.code, r.stdout, r.stderr, readFile(filepath.Join(dir, "piped")))
				}
				for i := range 200 {
					v := fmt.Sprintf("step %d", i)
					writeFile(t, filepath.Join(dir, "_temp", "step.sh"), "echo "+v+"\necho out"+fmt.Sprint(i)+" >> /w/_temp/env\n", 0o644)
					out := mustDocker(t, h.host, "exec", name, "sh", "-e", "/w/_temp/step.sh")
					if out != v+"\n" {
						t.Fatalf("exec %d saw %q, want %q (the host's write was not there)", i, out, v+"\n")
					}
					if got := readFile(filepath.Join(dir, "_temp", "env")); !strings.HasSuffix(got, fmt.Sprintf("out%d\n", i)) {
						t.Fatalf("after exec %d the host has %q (the container's write was not back)", i, got)
					}
				}
			})
		})
	}
}

// TestBindMountNeedsTheForwarder: a client talking to the control plane
// directly has nothing on its machine to sync a bind: a 400 says so.
func TestBindMountNeedsTheForwarder(t *testing.T) {
	s := requireStack(t)
	body := fmt.Sprintf(`{"Image":"busybox","HostConfig":{"Binds":["%s:/w"]}}`, t.TempDir())
	resp, b := s.apiRequest(t, http.MethodPost, "/containers/create", []byte(body), true)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "need the Sockerless forwarder") {
		t.Fatalf("status %d, body %s", resp.StatusCode, b)
	}
}

// TestBindMountSurvivesControlPlaneRestart: the bind's sync rides the
// control plane; when it crashes and comes back, the sync opens again and
// carries what changed on either side meanwhile, deletions included.
func TestBindMountSurvivesControlPlaneRestart(t *testing.T) {
	s := otherStack(t, nil, nil)
	dirs := map[string]string{}
	names := map[string]string{}
	for _, h := range s.hosts() {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "hostdel"), "x", 0o644)
		writeFile(t, filepath.Join(dir, "hostchange"), "v1", 0o644)
		name := uniq("bind-restart-" + h.name)
		mustDocker(t, h.host, "run", "-d", "--name", name, "-v", dir+":/w", "busybox", "sh", "-c", "sleep 3; echo during > /w/during; sleep 600")
		dirs[h.name], names[h.name] = dir, name
		t.Cleanup(func() { docker(t, h.host, "rm", "-f", name) })
	}
	s.crashControlPlane()
	for _, dir := range dirs {
		os.Remove(filepath.Join(dir, "hostdel"))
		writeFile(t, filepath.Join(dir, "hostchange"), "v2 while the control plane was away\n", 0o644)
	}
	time.Sleep(4 * time.Second) // the containers write while it is away
	if err := s.startControlPlane(); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hosts() {
		dir, name := dirs[h.name], names[h.name]
		deadline := time.Now().Add(60 * time.Second)
		for readFile(filepath.Join(dir, "during")) != "during\n" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the container's write while the control plane was away never reached the host", h.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		var out string
		for {
			r := docker(t, h.host, "exec", name, "sh", "-c", "cat /w/hostchange; ls /w; echo after > /w/after")
			if r.code == 0 {
				out = r.stdout
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: exec after the restart: %d %s", h.name, r.code, r.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if want := "v2 while the control plane was away\nduring\nhostchange\n"; out != want {
			t.Fatalf("%s: in the container after the restart: %q", h.name, out)
		}
		if got := readFile(filepath.Join(dir, "after")); got != "after\n" {
			t.Fatalf("%s: the exec's write after the restart: %q", h.name, got)
		}
	}
}
