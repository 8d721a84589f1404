package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// Every container has a network of its own (gcpsim gives each function
// instance its own network namespace, as Cloud Run does), as under Docker:
// two containers both listen on :8080, each answering itself.
func TestContainersHaveTheirOwnNetwork(t *testing.T) {
	s := requireStack(t)
	for _, h := range pauseHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			var ids []string
			for i := range 2 {
				id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "busybox", "sh", "-c",
					fmt.Sprintf("mkdir /w && echo c%d > /w/index.html && exec httpd -f -p 8080 -h /w", i)))
				t.Cleanup(func() { docker(t, h.host, "rm", "-f", id) })
				ids = append(ids, id)
			}
			for i, id := range ids {
				want := fmt.Sprintf("c%d\n", i)
				var got result
				waitFor(t, func() bool {
					got = docker(t, h.host, "exec", id, "wget", "-qO-", "http://127.0.0.1:8080/")
					return got.stdout == want
				})
				if running := inspect(t, h.host, id)["State"].(map[string]any)["Running"]; running != true {
					t.Errorf("container %d: running %v, want both httpds on :8080 up", i, running)
				}
			}
		})
	}
}

// /etc/hosts and /etc/resolv.conf are the container's own files, writable
// as under Docker (the agent rewrites them for the container's network).
func TestHostsAndResolvConfAreWritable(t *testing.T) {
	s := requireStack(t)
	script := `echo '127.0.0.9 added.example' >> /etc/hosts && grep added.example /etc/hosts && ` +
		`grep -c localhost /etc/hosts && echo 'options ndots:2' >> /etc/resolv.conf && tail -n1 /etc/resolv.conf`
	for _, h := range pauseHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			out := mustDocker(t, h.host, "run", "--rm", "busybox", "sh", "-c", script)
			if want := "127.0.0.9 added.example\n"; !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "options ndots:2\n") {
				t.Errorf("output %q, want the added lines back", out)
			}
		})
	}
}

// An image whose USER is nobody runs its process, and execs, as nobody;
// the agent itself runs as root (it serves DNS on port 53 and rewrites
// /etc/hosts for the container's network).
func TestImageUserIsKeptWhileTheAgentRunsAsRoot(t *testing.T) {
	s := requireStack(t)
	img, err := testimage.Busybox(testimage.Options{Config: &v1.Config{
		Cmd: []string{"sh"}, User: "nobody", Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.registry+"/library/nobody:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	hosts := s.hosts()
	if refHost, ok := reference(t); ok {
		if err := loadImage(referenceDocker, "nobody:latest", img); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, struct{ name, host string }{"docker", refHost})
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			if out := mustDocker(t, h.host, "run", "--rm", "nobody", "id", "-u"); out != "65534\n" {
				t.Errorf("run id -u = %q, want 65534", out)
			}
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "nobody", "sleep", "300"))
			defer docker(t, h.host, "rm", "-f", id)
			if out := mustDocker(t, h.host, "exec", id, "id", "-u"); out != "65534\n" {
				t.Errorf("exec id -u = %q, want 65534", out)
			}
			if h.name == "docker" {
				return // there PID 1 is the container's process
			}
			status := mustDocker(t, h.host, "exec", id, "cat", "/proc/1/status")
			if !strings.Contains(status, "\nUid:\t0\t0\t0\t0\n") {
				t.Errorf("the agent (PID 1) does not run as root:\n%s", status)
			}
		})
	}
}

// A control plane restarted on another TCP port reuses the running gcpsim
// and tells it its new callback port: containers started after reach it
// from their network namespaces, and their agents call back.
func TestControlPlaneOnAnotherPortReusesGcpsim(t *testing.T) {
	s := otherStack(t, []string{"--boot-timeout", "30s"}, nil)
	mustDocker(t, s.direct, "run", "--rm", "busybox", "true")
	sim, err := gcpsim.ReadEndpoint(filepath.Join(s.dir, "state", "gcpsim", "endpoint.json"))
	if err != nil {
		t.Fatal(err)
	}
	s.cp.stop()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s.tcp = fmt.Sprintf("127.0.0.1:%d", port)
	if err := s.startControlPlane(); err != nil {
		t.Fatal(err)
	}
	if again, err := gcpsim.ReadEndpoint(filepath.Join(s.dir, "state", "gcpsim", "endpoint.json")); err != nil || again.PID != sim.PID {
		t.Fatalf("gcpsim %+v (%v) after the restart, want the running one (pid %d)", again, err, sim.PID)
	}
	if out := mustDocker(t, s.direct, "run", "--rm", "busybox", "echo", "called back"); out != "called back\n" {
		t.Errorf("run after the restart = %q", out)
	}
}
