package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVolumeSurvivesRestart restarts the control plane while a container
// uses a volume: the volume, its labels, its users and its data stay.
func TestVolumeSurvivesRestart(t *testing.T) {
	s := otherStack(t, nil, nil)
	v, c := uniq("keep"), uniq("keeper")
	mustDocker(t, s.direct, "volume", "create", "--label", "k=v", v)
	mustDocker(t, s.direct, "run", "-d", "--name", c, "-v", v+":/data", "busybox", "sh", "-c", "echo before > /data/f; sleep 300")
	waitFor(t, func() bool { return docker(t, s.direct, "exec", c, "cat", "/data/f").stdout == "before\n" })
	s.cp.stop()
	if err := s.startControlPlane(); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hosts() {
		if got := mustDocker(t, h.host, "volume", "ls", "-q", "--filter", "label=k=v"); strings.TrimSpace(got) != v {
			t.Fatalf("%s: volume ls after restart: %q", h.name, got)
		}
		if r := docker(t, h.host, "volume", "rm", v); r.code == 0 || !strings.Contains(r.stderr, "in use") {
			t.Fatalf("%s: rm after restart: %+v", h.name, r)
		}
		if out := mustDocker(t, h.host, "exec", c, "cat", "/data/f"); out != "before\n" {
			t.Fatalf("%s: running container reads %q", h.name, out)
		}
		if out := mustDocker(t, h.host, "run", "--rm", "-v", v+":/d", "busybox", "cat", "/d/f"); out != "before\n" {
			t.Fatalf("%s: new container reads %q", h.name, out)
		}
	}
	mustDocker(t, s.direct, "rm", "-f", c)
	// prune (API 1.50): anonymous volumes only, unless --all.
	anon := uniq("p-anon")
	mustDocker(t, s.direct, "create", "--name", anon, "-v", "/x", "busybox", "true")
	mustDocker(t, s.direct, "rm", anon)
	out := mustDocker(t, s.direct, "volume", "prune", "-f")
	if strings.Contains(out, v) || !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("prune removed the named volume or said nothing: %q", out)
	}
	if n := strings.TrimSpace(mustDocker(t, s.direct, "volume", "ls", "-q")); n != v {
		t.Fatalf("after prune: %q, want only %s", n, v)
	}
	out = mustDocker(t, s.direct, "volume", "prune", "-f", "--all", "--filter", "label=k=v")
	if !strings.Contains(out, v) {
		t.Fatalf("prune --all: %q", out)
	}
}

const sdkVolumeScript = `
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version=sys.argv[2])
name = sys.argv[3]
v = c.volumes.create(name, labels={"a": "b"})
assert v.name == name and v.attrs["Driver"] == "local" and v.attrs["Labels"] == {"a": "b"}, v.attrs
assert c.volumes.get(name).id == name
assert [x.name for x in c.volumes.list(filters={"label": "a=b", "name": name})] == [name]
out = c.containers.run("busybox", ["sh", "-c", "echo sdk > /data/f; cat /data/f"], remove=True,
                       volumes={name: {"bind": "/data", "mode": "rw"}})
assert out == b"sdk\n", out
out = c.containers.run("busybox", ["cat", "/data/f"], remove=True, volumes=[name + ":/data:ro"])
assert out == b"sdk\n", out
try:
    c.volumes.get(name + "-missing")
    raise SystemExit("no NotFound")
except docker.errors.NotFound:
    pass
ct = c.containers.create("busybox", "true", volumes={name: {"bind": "/data"}})
try:
    v.remove()
    raise SystemExit("no conflict")
except docker.errors.APIError as e:
    assert e.status_code == 409 and "in use" in str(e), e
ct.remove()
v.remove()
assert name not in [x.name for x in c.volumes.list()]
print("sdk volumes ok")
`

func TestPythonSDKVolumes(t *testing.T) {
	s := requireStack(t)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed (apt-get install python3-docker)")
	}
	script := filepath.Join(t.TempDir(), "vol.py")
	if err := os.WriteFile(script, []byte(sdkVolumeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			out, err := exec.Command("python3", script, h.host, "1.41", uniq("sdkvol")).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "sdk volumes ok") {
				t.Fatalf("python SDK volumes: %v\n%s", err, out)
			}
		})
	}
}

// A create request without a HostConfig (docker's Python SDK sends none
// unless asked) still gets its Config.Volumes as anonymous volumes, and
// docker cp reaches a volume's destination before the first start (the
// upload lands in the volume) and while it runs, as with the Docker
// engine.
func TestVolumesWithoutHostConfigAndCopies(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := h.create(t, "", map[string]any{"Cmd": []string{"sh", "-c", "cat /vol1/in.txt > /vol1/out.txt && echo ready; sleep 300"},
				"Volumes": map[string]any{"/vol1": map[string]any{}}})
			var c struct{ Mounts []map[string]any }
			h.must(t, http.StatusOK, "GET", "/containers/"+id+"/json", nil, &c)
			if len(c.Mounts) != 1 || c.Mounts[0]["Destination"] != "/vol1" || c.Mounts[0]["Type"] != "volume" {
				t.Fatalf("mounts %v, want an anonymous volume at /vol1", c.Mounts)
			}
			t.Cleanup(func() { h.call(t, "DELETE", "/containers/"+id+"?force=1&v=1", nil) })
			h.must(t, http.StatusOK, "PUT", "/containers/"+id+"/archive?path=/vol1", tarOf(t, [][2]string{{"in.txt", "copied in"}}), nil)
			h.must(t, http.StatusNoContent, "POST", "/containers/"+id+"/start", nil, nil)
			h.pollLogs(t, id, "ready")
			_, b := h.call(t, "GET", "/containers/"+id+"/archive?path=/vol1/out.txt", nil)
			if !strings.Contains(string(b), "copied in") {
				t.Fatalf("archive of /vol1/out.txt after the exit: %q", b)
			}
		})
	}
}
