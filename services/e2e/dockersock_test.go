package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sockerless/sockerless/services/internal/testimage"
)

var (
	cliImgOnce sync.Once
	cliImg     v1.Image
	cliImgErr  error
	cliRefOnce sync.Once
	cliRefErr  error
	cliSeeded  sync.Map // registry host → error
)

// dockerCLIImage is busybox with this machine's docker CLI at
// /usr/local/bin/docker; it skips when that CLI is not a static binary
// (it must run inside a busybox image).
func dockerCLIImage(t testing.TB) v1.Image {
	t.Helper()
	cliImgOnce.Do(func() {
		path, err := exec.LookPath("docker")
		if err != nil {
			cliImgErr = err
			return
		}
		if out, _ := exec.Command("ldd", path).CombinedOutput(); !strings.Contains(string(out), "not a dynamic executable") && !strings.Contains(string(out), "statically linked") {
			cliImgErr = fmt.Errorf("the docker CLI %s is not statically linked: %s", path, out)
			return
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			cliImgErr = err
			return
		}
		cliImg, cliImgErr = testimage.Busybox(testimage.Options{Programs: map[string][]byte{"/usr/local/bin/docker": bin}})
	})
	if cliImgErr != nil {
		t.Skipf("no docker CLI image: %v", cliImgErr)
	}
	return cliImg
}

// seedDockerCLI pushes the docker CLI image to s's registry as
// docker.io/library/dockercli, and loads it into the reference engine
// where one answers.
func seedDockerCLI(t *testing.T, s *stack) {
	t.Helper()
	_, ok := reference(t)
	seedDockerCLIRef(t, s, ok)
}

func seedDockerCLIRef(t testing.TB, s *stack, withRef bool) {
	t.Helper()
	img := dockerCLIImage(t)
	v, _ := cliSeeded.LoadOrStore(s.registry, sync.OnceValue(func() error {
		ref, err := name.ParseReference(s.registry+"/library/dockercli:latest", name.Insecure)
		if err != nil {
			return err
		}
		return remote.Write(ref, img)
	}))
	if err := v.(func() error)(); err != nil {
		t.Fatalf("push the docker CLI image: %v", err)
	}
	if withRef {
		cliRefOnce.Do(func() { cliRefErr = loadImage(referenceDocker, "dockercli:latest", img) })
		if cliRefErr != nil {
			t.Fatalf("load the docker CLI image into the Docker engine: %v", cliRefErr)
		}
	}
}

// TestDockerSocketInContainer: with the Docker socket bound into a
// container (/var/run/docker.sock, or the client's own socket), the docker
// CLI inside sees its own container, runs a sibling, execs into it with
// stdin, and removes it — directly, through the forwarder, on the
// Firestore store and on the Docker engine alike.
func TestDockerSocketInContainer(t *testing.T) {
	s := requireStack(t)
	seedDockerCLI(t, s)
	type target struct{ name, host, src string }
	targets := []target{
		{"direct", s.direct, "/var/run/docker.sock"},
		{"direct own socket", s.direct, strings.TrimPrefix(s.direct, "unix://")},
		{"forwarder own socket", s.fwd, strings.TrimPrefix(s.fwd, "unix://")},
	}
	// On Firestore the published ports a start's view lists at the
	// gateway come from a query of the publishing containers alone.
	targets = append(targets, target{"firestore", firestoreStack(t).direct, "/var/run/docker.sock"})
	if ref, ok := reference(t); ok {
		targets = append(targets, target{"docker", ref, "/var/run/docker.sock"})
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			outer, sib, web := uniq("dsock-outer-"), uniq("dsock-sib-"), uniq("dsock-web-")
			t.Cleanup(func() { docker(t, tg.host, "rm", "-f", web, sib, outer) })
			mustDocker(t, tg.host, "run", "-d", "--name", outer, "-v", tg.src+":/var/run/docker.sock",
				"--add-host", "host.docker.internal:host-gateway", "dockercli", "sleep", "600")

			mp := inspect(t, tg.host, outer)["Mounts"].([]any)
			if len(mp) != 1 {
				t.Fatalf("mounts %v", mp)
			}
			m := mp[0].(map[string]any)
			if m["Type"] != "bind" || m["Source"] != tg.src || m["Destination"] != "/var/run/docker.sock" || m["RW"] != true {
				t.Fatalf("mount %v", m)
			}

			// Docker lists the socket bind's mount point as added.
			if diff := mustDocker(t, tg.host, "diff", outer); !strings.Contains(diff, "A /var/run/docker.sock\n") {
				t.Fatalf("docker diff:\n%s", diff)
			}

			inside := func(stdin []byte, args ...string) result {
				return dockerIn(t, tg.host, stdin, append([]string{"exec", "-i", outer, "docker"}, args...)...)
			}
			mustInside := func(stdin []byte, args ...string) string {
				r := inside(stdin, args...)
				if r.code != 0 {
					t.Fatalf("docker %s inside: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
				}
				return r.stdout
			}
			if names := mustInside(nil, "ps", "--format", "{{.Names}}"); !strings.Contains(names, outer) {
				t.Fatalf("docker ps inside does not list its own container %s:\n%s", outer, names)
			}
			mustInside(nil, "run", "-d", "--name", sib, "busybox", "sleep", "600")
			if names := mustDocker(t, tg.host, "ps", "--format", "{{.Names}}"); !strings.Contains(names, sib) {
				t.Fatalf("the sibling %s is not in the outer docker ps:\n%s", sib, names)
			}
			if out := mustInside(nil, "exec", sib, "sh", "-c", "echo hi from $(hostname)"); !strings.HasPrefix(out, "hi from ") {
				t.Fatalf("exec into the sibling printed %q", out)
			}
			if out := mustInside([]byte("abc\ndef\n"), "exec", "-i", sib, "cat"); out != "abc\ndef\n" {
				t.Fatalf("exec -i into the sibling echoed %q", out)
			}
			if r := inside(nil, "exec", sib, "sh", "-c", "exit 7"); r.code != 7 {
				t.Fatalf("exit code through the socket: %d (%s)", r.code, r.stderr)
			}

			// A sibling's published port, at the gateway address and at
			// host.docker.internal (host-gateway), as under Docker.
			hp, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			want := "served by " + web
			mustInside(nil, "run", "-d", "--name", web, "-p", fmt.Sprintf("%d:80", hp), "busybox", "sh", "-c",
				"mkdir -p /www && echo '"+want+"' > /www/id && exec httpd -f -p 80 -h /www")
			gw := strings.TrimSpace(mustDocker(t, tg.host, "inspect", "-f", "{{.NetworkSettings.Gateway}}", outer))
			if gw == "" {
				t.Fatalf("outer container has no gateway address")
			}
			for _, addr := range []string{gw, "host.docker.internal"} {
				url := fmt.Sprintf("http://%s:%d/id", addr, hp)
				deadline := time.Now().Add(30 * time.Second)
				for {
					r := docker(t, tg.host, "exec", outer, "timeout", "5", "wget", "-q", "-O-", url)
					if r.code == 0 && strings.TrimSpace(r.stdout) == want {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the sibling's published port at %s: exit %d %q %s", url, r.code, r.stdout, r.stderr)
					}
					time.Sleep(300 * time.Millisecond)
				}
			}
			mustInside(nil, "rm", "-f", web)
			mustInside(nil, "rm", "-f", sib)
			if names := mustDocker(t, tg.host, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, sib) {
				t.Fatalf("the sibling removed inside is still listed:\n%s", names)
			}
		})
	}
}

// TestDockerSocketIsTheContainersNamespace: a client straight on the TCP
// endpoint with a token of namespace N (no forwarder, no unix socket)
// binds the Docker socket; the docker CLI inside lists N's containers and
// nothing of another namespace, and its siblings are N's.
func TestDockerSocketIsTheContainersNamespace(t *testing.T) {
	s := requireStack(t)
	seedDockerCLI(t, s)
	ns := uniq("dsockns")
	resp, body := s.apiRequest(t, "POST", "/sockerless/v1/tokens", []byte(`{"member":"ci@example.com","namespace":"`+ns+`","role":"member"}`), true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("issue a token: %d %s", resp.StatusCode, body)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token answer %s: %v", body, err)
	}
	cfg := t.TempDir()
	headers, _ := json.Marshal(map[string]any{"HttpHeaders": map[string]string{"Authorization": "Bearer " + tok.Token}})
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), headers, 0o600); err != nil {
		t.Fatal(err)
	}
	host := "tcp://" + s.tcp
	d := func(stdin []byte, args ...string) result { return dockerWithConfig(t, host, cfg, stdin, args...) }
	must := func(stdin []byte, args ...string) string {
		t.Helper()
		r := d(stdin, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	other, outer, sib := uniq("dsock-default-"), uniq("dsock-ns-outer-"), uniq("dsock-ns-sib-")
	t.Cleanup(func() {
		d(nil, "rm", "-f", sib, outer)
		docker(t, s.direct, "rm", "-f", other)
	})
	mustDocker(t, s.direct, "create", "--name", other, "busybox")
	must(nil, "run", "-d", "--name", outer, "-v", "/var/run/docker.sock:/var/run/docker.sock", "dockercli", "sleep", "600")
	must(nil, "exec", outer, "docker", "run", "-d", "--name", sib, "busybox", "sleep", "600")
	names := must(nil, "exec", outer, "docker", "ps", "-a", "--format", "{{.Names}}")
	if !strings.Contains(names, outer) || !strings.Contains(names, sib) || strings.Contains(names, other) {
		t.Fatalf("docker ps -a inside namespace %s:\n%s", ns, names)
	}
	if r := d(nil, "exec", outer, "docker", "inspect", other); r.code == 0 {
		t.Fatalf("another namespace's container is visible inside: %s", r.stdout)
	}
	if mine := must(nil, "ps", "--format", "{{.Names}}"); !strings.Contains(mine, sib) {
		t.Fatalf("the sibling is not in the token's namespace:\n%s", mine)
	}
	if dflt := mustDocker(t, s.direct, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(dflt, sib) || strings.Contains(dflt, outer) {
		t.Fatalf("namespace %s's containers show in the default namespace:\n%s", ns, dflt)
	}
}

// TestDockerSocketCIStep: the "docker in CI" step of a GitHub Actions
// container job. The job container has the workspace and the Docker
// socket bound; a step script the runner wrote on the host runs docker
// inside the job, which starts a sibling with a bind of the host's
// workspace; what the sibling wrote is on the host when the step's exec
// has ended. Directly, through the forwarder and on the Docker engine.
func TestDockerSocketCIStep(t *testing.T) {
	s := requireStack(t)
	seedDockerCLI(t, s)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ws := t.TempDir()
			writeFile(t, filepath.Join(ws, "in.txt"), "written on the host\n", 0o644)
			job := uniq("dsock-job-")
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", job) })
			mustDocker(t, h.host, "run", "-d", "--name", job, "-v", ws+":/__w", "-v", "/var/run/docker.sock:/var/run/docker.sock",
				"--entrypoint", "tail", "dockercli", "-f", "/dev/null")
			writeFile(t, filepath.Join(ws, "_temp", "step.sh"),
				"docker run --rm -v "+ws+":/work busybox sh -c 'cat /work/in.txt && echo from-sibling > /work/out.txt'\n", 0o644)
			r := dockerIn(t, h.host, nil, "exec", "-i", job, "sh", "-e", "/__w/_temp/step.sh")
			if r.code != 0 || r.stdout != "written on the host\n" {
				t.Fatalf("step: exit %d\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if got := readFile(filepath.Join(ws, "out.txt")); got != "from-sibling\n" {
				t.Fatalf("the sibling's file on the host: %q", got)
			}
		})
	}
}
