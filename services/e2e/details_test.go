package e2e

import (
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
