package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// referenceHosts are the hosts a scenario runs on: Sockerless directly
// and through the forwarder, and the Docker engine when it answers.
func referenceHosts(t *testing.T, s *stack) []struct{ name, host string } {
	hosts := s.hosts()
	if ref, ok := reference(t); ok {
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	return hosts
}

func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9) }

// volumeInspect decodes docker volume inspect of one volume.
func volumeInspect(t *testing.T, host, name string) map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(mustDocker(t, host, "volume", "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("volume inspect %s: %v", name, err)
	}
	return out[0]
}

func TestVolumeLifecycle(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			v := uniq("vol")
			if out := mustDocker(t, h.host, "volume", "create", "--label", "team=ci", "--label", "job", v); strings.TrimSpace(out) != v {
				t.Fatalf("create printed %q", out)
			}
			vi := volumeInspect(t, h.host, v)
			if vi["Driver"] != "local" || vi["Scope"] != "local" || vi["Name"] != v || vi["Mountpoint"] == "" || vi["Options"] != nil {
				t.Fatalf("inspect %v", vi)
			}
			if _, err := time.Parse(time.RFC3339, vi["CreatedAt"].(string)); err != nil {
				t.Fatalf("CreatedAt %v: %v", vi["CreatedAt"], err)
			}
			if l := vi["Labels"].(map[string]any); l["team"] != "ci" || l["job"] != "" {
				t.Fatalf("labels %v", l)
			}
			ls := func(args ...string) []string {
				out := mustDocker(t, h.host, append([]string{"volume", "ls", "-q"}, args...)...)
				var names []string
				for _, n := range strings.Fields(out) {
					if strings.HasPrefix(n, v) {
						names = append(names, n)
					}
				}
				sort.Strings(names)
				return names
			}
			for _, tc := range []struct {
				filter string
				want   int
			}{
				{"label=team=ci", 1}, {"label=team=other", 0}, {"label=job", 1}, {"name=" + v, 1},
				{"driver=local", 1}, {"dangling=true", 1}, {"dangling=false", 0},
			} {
				if got := ls("--filter", tc.filter); len(got) != tc.want {
					t.Errorf("ls --filter %s: %v, want %d", tc.filter, got, tc.want)
				}
			}
			// A container using it: in use, not dangling.
			c := uniq("vc")
			mustDocker(t, h.host, "create", "--name", c, "-v", v+":/data", "busybox", "true")
			if got := ls("--filter", "dangling=false"); len(got) != 1 {
				t.Errorf("in use: ls dangling=false %v", got)
			}
			r := docker(t, h.host, "volume", "rm", v)
			if r.code == 0 || !strings.Contains(r.stderr, "volume is in use") {
				t.Fatalf("rm of a volume in use: %+v", r)
			}
			id := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{.Id}}", c))
			if !strings.Contains(r.stderr, id) {
				t.Errorf("in-use error names no container ID %s: %s", id, r.stderr)
			}
			mustDocker(t, h.host, "rm", c)
			mustDocker(t, h.host, "volume", "rm", v)
			r = docker(t, h.host, "volume", "inspect", v)
			if r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
				t.Fatalf("inspect after rm: %+v", r)
			}
			r = docker(t, h.host, "volume", "rm", v)
			if r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
				t.Fatalf("rm of a missing volume: %+v", r)
			}
			mustDocker(t, h.host, "volume", "rm", "-f", v)
			r = docker(t, h.host, "volume", "create", "a/b")
			if r.code == 0 || !strings.Contains(r.stderr, "includes invalid characters for a local volume name") {
				t.Fatalf("bad name: %+v", r)
			}
		})
	}
}

// TestVolumeDataAcrossContainers is GitLab's shape: a volume created with
// labels, a helper container (by image ID) writes, a build container
// reads and writes, a later job reuses it, then it is removed; also a
// read-only mount, copy-up, nocopy and tmpfs.
func TestVolumeDataAcrossContainers(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			v := uniq("builds")
			mustDocker(t, h.host, "volume", "create", "--label", "com.gitlab.gitlab-runner.type=cache", v)
			if h.name != "docker" { // the engine has it loaded, and no registry
				mustDocker(t, h.host, "pull", "-q", "busybox")
			}
			img := strings.TrimSpace(mustDocker(t, h.host, "image", "inspect", "-f", "{{.Id}}", "busybox"))
			mustDocker(t, h.host, "run", "--rm", "-v", v+":/builds", img, "sh", "-c", "mkdir -p /builds/proj && echo cloned > /builds/proj/README")
			out := mustDocker(t, h.host, "run", "--rm", "--mount", "type=volume,src="+v+",dst=/builds", "busybox", "sh", "-c", "cat /builds/proj/README && echo built > /builds/proj/out")
			if out != "cloned\n" {
				t.Fatalf("build container read %q", out)
			}
			out = mustDocker(t, h.host, "run", "--rm", "-v", v+":/cache:ro", "busybox", "sh", "-c", "cat /cache/proj/out; echo x > /cache/new; echo code=$?")
			if !strings.HasPrefix(out, "built\n") || !strings.Contains(out, "code=1") {
				t.Fatalf("second job: %q", out)
			}
			r := docker(t, h.host, "run", "--rm", "-v", v+":/cache:ro", "busybox", "touch", "/cache/x")
			if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
				t.Fatalf("write to :ro: %+v", r)
			}
			mustDocker(t, h.host, "volume", "rm", v)
			// A new volume of the same name is empty.
			mustDocker(t, h.host, "volume", "create", v)
			if out := mustDocker(t, h.host, "run", "--rm", "-v", v+":/builds", "busybox", "ls", "-A", "/builds"); out != "" {
				t.Fatalf("re-created volume holds %q", out)
			}
			mustDocker(t, h.host, "volume", "rm", v)

			// Copy-up: an empty volume mounted on /etc gets the image's
			// files (the volume is auto-created); nocopy leaves it empty.
			cu, nc := uniq("copyup"), uniq("nocopy")
			out = mustDocker(t, h.host, "run", "--rm", "-v", cu+":/etc", "busybox", "sh", "-c", "test -s /etc/passwd && echo copied")
			if out != "copied\n" {
				t.Fatalf("copy-up: %q", out)
			}
			out = mustDocker(t, h.host, "run", "--rm", "-v", cu+":/data", "busybox", "sh", "-c", "test -s /data/passwd && echo kept")
			if out != "kept\n" {
				t.Fatalf("copied files not in the volume: %q", out)
			}
			// (docker binds hostname, hosts and resolv.conf into /etc.)
			out = mustDocker(t, h.host, "run", "--rm", "--mount", "type=volume,src="+nc+",dst=/etc,volume-nocopy", "busybox", "sh", "-c", "ls -A /etc | grep -v -e hostname -e hosts -e resolv.conf; true")
			if out != "" {
				t.Fatalf("nocopy volume holds %q", out)
			}
			mustDocker(t, h.host, "volume", "rm", cu, nc)

			// tmpfs of a size, in memory.
			out = mustDocker(t, h.host, "run", "--rm", "--tmpfs", "/run:size=64m", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1048576", "busybox", "sh", "-c", "grep -E ' /(run|t) ' /proc/mounts | cut -d' ' -f2-4 | sort")
			if !strings.Contains(out, "/run tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k") || !strings.Contains(out, "/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k") {
				t.Fatalf("tmpfs mounts: %q", out)
			}
		})
	}
}

// TestVolumeAnonymous covers -v /path, an image VOLUME's absence,
// --volumes-from, inspect's Mounts, rm -v and --rm.
func TestVolumeAnonymous(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			named := uniq("named")
			a, b := uniq("anon-a"), uniq("anon-b")
			mustDocker(t, h.host, "run", "--name", a, "-v", "/anon", "-v", named+":/data", "busybox", "sh", "-c", "echo hi > /anon/f && echo n > /data/f")
			var mounts []map[string]any
			if err := json.Unmarshal([]byte(mustDocker(t, h.host, "inspect", "-f", "{{json .Mounts}}", a)), &mounts); err != nil {
				t.Fatal(err)
			}
			sort.Slice(mounts, func(i, j int) bool { return mounts[i]["Destination"].(string) < mounts[j]["Destination"].(string) })
			if len(mounts) != 2 {
				t.Fatalf("mounts %v", mounts)
			}
			anon := mounts[0]["Name"].(string)
			want := []string{
				fmt.Sprintf("volume %s /anon local  true ", anon),
				fmt.Sprintf("volume %s /data local z true ", named),
			}
			for i, m := range mounts {
				got := fmt.Sprintf("%s %s %s %s %s %v %s", m["Type"], m["Name"], m["Destination"], m["Driver"], m["Mode"], m["RW"], m["Propagation"])
				if got != want[i] || m["Source"] == "" {
					t.Errorf("mount %d: %q (source %v), want %q", i, got, m["Source"], want[i])
				}
			}
			// --volumes-from c:ro sees both, read-only.
			out := mustDocker(t, h.host, "run", "--rm", "--volumes-from", a+":ro", "busybox", "sh", "-c", "cat /anon/f /data/f; touch /anon/x 2>/dev/null || echo ro")
			if out != "hi\nn\nro\n" {
				t.Fatalf("volumes-from: %q", out)
			}
			mustDocker(t, h.host, "create", "--name", b, "--volumes-from", a, "busybox", "true")
			mustDocker(t, h.host, "rm", "-v", a)
			// b still uses the anonymous volume: rm -v of a left it.
			mustDocker(t, h.host, "volume", "inspect", anon)
			mustDocker(t, h.host, "rm", "-v", b)
			if r := docker(t, h.host, "volume", "inspect", anon); r.code == 0 {
				t.Fatalf("anonymous volume outlived its containers")
			}
			mustDocker(t, h.host, "volume", "inspect", named) // named volumes stay
			// --rm removes the anonymous volume of a run.
			out = mustDocker(t, h.host, "run", "--rm", "-v", "/scratch", "busybox", "sh", "-c", "grep ' /scratch ' /proc/mounts >/dev/null && echo mounted")
			if out != "mounted\n" {
				t.Fatalf("anonymous volume: %q", out)
			}
			mustDocker(t, h.host, "volume", "rm", named)
		})
	}
}

// TestVolumeSharedLive has two running containers on one volume: what one
// writes the other reads within a second.
func TestVolumeSharedLive(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			v := uniq("live")
			a, b := uniq("live-a"), uniq("live-b")
			mustDocker(t, h.host, "run", "-d", "--name", a, "-v", v+":/shared", "busybox", "sleep", "300")
			mustDocker(t, h.host, "run", "-d", "--name", b, "-v", v+":/shared", "busybox", "sleep", "300")
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", a, b); docker(t, h.host, "volume", "rm", v) })
			mustDocker(t, h.host, "exec", a, "sh", "-c", "echo from-a > /shared/msg")
			if out := mustDocker(t, h.host, "exec", b, "cat", "/shared/msg"); out != "from-a\n" {
				t.Fatalf("b read %q", out)
			}
			mustDocker(t, h.host, "exec", b, "sh", "-c", "echo from-b >> /shared/msg")
			if out := mustDocker(t, h.host, "exec", a, "cat", "/shared/msg"); out != "from-a\nfrom-b\n" {
				t.Fatalf("a read %q", out)
			}
		})
	}
}

// TestVolumeRefusals: a user process cannot mount (the agent keeps that
// privilege to itself), as under docker. (Host binds work: binds_test.go.)
func TestVolumeRefusals(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			r := docker(t, h.host, "run", "--rm", "-v", uniq("m")+":/data", "busybox", "sh", "-c", "mount -t tmpfs none /mnt; echo $?; grep -c CapBnd /proc/self/status; grep CapEff /proc/self/status")
			if !strings.Contains(r.stdout, "1\n") || !strings.Contains(r.stdout, "CapEff:\t00000000a80425fb") {
				t.Fatalf("user process: %+v", r)
			}
		})
	}
}
