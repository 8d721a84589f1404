package e2e

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// docker logs --details prints the attributes selected by --log-opt before
// each line, as the Docker engine does (compared where one answers).
func TestLogsDetails(t *testing.T) {
	s := requireStack(t)
	hosts := s.hosts()
	if ref, ok := reference(t); ok {
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	got := map[string][2]string{}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d",
				"--label", "z=1 2", "--label", "a=x,y", "--label", "lab1=v", "--label", "other=o",
				"--log-opt", "labels=z,a", "--log-opt", "labels-regex=^lab",
				"-e", "E=p q", "-e", "F=1", "--log-opt", "env=E,NOPE", "--log-opt", "env-regex=^F",
				"busybox", "sh", "-c", "echo out; echo err >&2"))
			defer mustDocker(t, h.host, "rm", "-f", id)
			mustDocker(t, h.host, "wait", id)
			r := docker(t, h.host, "logs", "--details", id)
			plain := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "busybox", "echo", "plain"))
			defer mustDocker(t, h.host, "rm", "-f", plain)
			mustDocker(t, h.host, "wait", plain)
			time.Sleep(100 * time.Millisecond) // the reference engine's log file
			p := docker(t, h.host, "logs", "--details", plain)
			if r.stdout != "E=p+q,F=1,a=x%2Cy,lab1=v,z=1+2 out\n" || r.stderr != "E=p+q,F=1,a=x%2Cy,lab1=v,z=1+2 err\n" || p.stdout != " plain\n" {
				t.Errorf("logs --details: stdout %q stderr %q; without attributes %q", r.stdout, r.stderr, p.stdout)
			}
			got[h.name] = [2]string{r.stdout + r.stderr, p.stdout}
		})
	}
	if ref, ok := got["docker"]; ok && got["direct"] != ref {
		t.Errorf("sockerless %q differs from docker %q", got["direct"], ref)
	}
}

// --log-opt tag (a template, as docker renders it) and env of the image's
// environment are attributes too; a tag template that fails keeps the
// container from starting, with docker's message. Compared with the Docker
// engine where one answers.
func TestLogsDetailsTag(t *testing.T) {
	s := requireStack(t)
	hosts := s.hosts()
	if ref, ok := reference(t); ok {
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			name := "details-tag-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", name,
				"--log-opt", "tag={{.ImageName}}|{{.Command}}|{{.DaemonName}}|{{upper .Name}}|{{len .ID}}|{{.ImageID}}",
				"--log-opt", "env=PATH,HOSTNAME", "busybox", "echo", "hi")
			defer mustDocker(t, h.host, "rm", "-f", name)
			mustDocker(t, h.host, "wait", name)
			c := inspect(t, h.host, name)
			var path string
			for _, kv := range c["Config"].(map[string]any)["Env"].([]any) {
				if v, ok := strings.CutPrefix(kv.(string), "PATH="); ok {
					path = v
				}
			}
			if path == "" {
				t.Fatalf("the image has no PATH: %v", c["Config"])
			}
			imageID := c["Image"].(string)[:12]
			tag := "busybox|echo hi|docker|" + strings.ToUpper(name) + "|12|" + imageID
			want := "PATH=" + url.QueryEscape(path) + ",tag=" + url.QueryEscape(tag) + " hi\n"
			time.Sleep(100 * time.Millisecond) // the reference engine's log file
			if got := docker(t, h.host, "logs", "--details", name).stdout; got != want {
				t.Errorf("logs --details = %q, want %q", got, want)
			}

			bad := "details-bad-tag-" + h.name
			r := docker(t, h.host, "run", "--rm", "--name", bad, "--log-opt", "tag={{", "busybox", "echo", "hi")
			if r.code != 125 || !strings.Contains(r.stderr, "failed to initialize logging driver: template: log-tag:1: unclosed action") || r.stdout != "" {
				t.Errorf("run with a bad tag: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			waitFor(t, func() bool { return docker(t, h.host, "inspect", bad).code != 0 })
		})
	}
}
