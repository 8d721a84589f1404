package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkDockerSocketInContainer: the docker CLI inside a container with
// the Docker socket bound: 20 `docker ps` and 5 `docker run --rm busybox
// true` of a sibling, timed inside the container (busybox time), per
// operation, with the ratio to the Docker engine in the same run.
func BenchmarkDockerSocketInContainer(b *testing.B) {
	s := requireStack(b)
	withRef := dockerAnswers(b)
	seedDockerCLIRef(b, s, withRef)
	targets := s.hosts()
	if withRef {
		targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
	}
	type result struct{ ps, run float64 } // ms per operation
	res := map[string]result{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			outer := unique("bench-dsock-" + tg.name)
			src := "/var/run/docker.sock"
			if tg.name == "forwarder" {
				src = strings.TrimPrefix(s.fwd, "unix://")
			}
			mustDocker(b, tg.host, "run", "-d", "--name", outer, "-v", src+":/var/run/docker.sock", "dockercli", "sleep", "600")
			mustDocker(b, tg.host, "exec", outer, "docker", "ps") // warm
			timed := func(n int, cmd string) float64 {
				r := docker(b, tg.host, "exec", outer, "sh", "-c", "time sh -c 'for i in $(seq "+strconv.Itoa(n)+"); do "+cmd+" >/dev/null || exit 1; done'")
				if r.code != 0 {
					b.Fatalf("%s: exit %d %s", cmd, r.code, r.stderr)
				}
				return parseBusyboxReal(b, r.stderr) * 1000 / float64(n)
			}
			res[tg.name] = result{ps: timed(20, "docker ps -q"), run: timed(5, "docker run --rm busybox true")}
			docker(b, tg.host, "rm", "-f", outer)
		}
	}
	d, hasDocker := res["docker"]
	for _, name := range []string{"direct", "forwarder", "docker"} {
		r, ok := res[name]
		if !ok {
			continue
		}
		b.ReportMetric(r.ps, name+"-ps-ms")
		b.ReportMetric(r.run, name+"-run-rm-ms")
		if hasDocker && name != "docker" {
			b.ReportMetric(r.ps/d.ps, name+"-ps-x-docker")
			b.ReportMetric(r.run/d.run, name+"-run-rm-x-docker")
		}
	}
}

var busyboxReal = regexp.MustCompile(`real\s+(\d+)m\s*([\d.]+)s`)

// parseBusyboxReal reads busybox time's "real 0m 1.23s" in seconds.
func parseBusyboxReal(b *testing.B, out string) float64 {
	m := busyboxReal.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no time in %q", out)
	}
	min, _ := strconv.ParseFloat(m[1], 64)
	sec, _ := strconv.ParseFloat(m[2], 64)
	return min*60 + sec
}
