package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkVolumes measures what issue 11 asks for, on the dev stack and
// (when one answers) on the machine's Docker engine in the same run:
// writing and reading SOCKERLESS_BENCH_MB (default 200) MB in a volume
// from a container (dd in docker exec, timed from outside, fsync'd
// write), and `docker volume ls` with 1,000 volumes.
//
//	go test ./services/e2e -run '^$' -bench Volumes -benchtime 1x
func BenchmarkVolumes(b *testing.B) {
	s := requireStack(b)
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("SOCKERLESS_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	targets := []struct{ name, host string }{{"sockerless", s.direct}}
	if dockerAnswers(b) {
		targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
	}
	type result struct{ write, read, ls float64 }
	res := map[string]result{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			v, c := uniq("bench-vol"), uniq("bench-vc")
			mustDocker(b, tg.host, "run", "-d", "--name", c, "-v", v+":/data", "busybox", "sleep", "600")
			timed := func(cmd string) float64 {
				start := time.Now()
				mustDocker(b, tg.host, "exec", c, "sh", "-c", cmd)
				return float64(mb) / time.Since(start).Seconds()
			}
			w := timed(fmt.Sprintf("dd if=/dev/zero of=/data/f bs=1M count=%d conv=fsync 2>/dev/null", mb))
			r := timed("dd if=/data/f of=/dev/null bs=1M 2>/dev/null")
			docker(b, tg.host, "rm", "-f", c)
			docker(b, tg.host, "volume", "rm", v)
			res[tg.name] = result{write: w, read: r, ls: volumeLs(b, tg.host, 1000)}
		}
	}
	sl := res["sockerless"]
	b.ReportMetric(sl.write, "write-MB/s")
	b.ReportMetric(sl.read, "read-MB/s")
	b.ReportMetric(sl.ls, "ls-1000-ms")
	line := fmt.Sprintf("sockerless: write %d MB at %.1f MB/s, read at %.1f MB/s; volume ls of 1000 volumes %.0f ms", mb, sl.write, sl.read, sl.ls)
	if d, ok := res["docker"]; ok {
		b.ReportMetric(sl.write/d.write, "write-x-docker")
		b.ReportMetric(sl.read/d.read, "read-x-docker")
		b.ReportMetric(sl.ls/d.ls, "ls-x-docker")
		line += fmt.Sprintf(" | docker: write %.1f MB/s, read %.1f MB/s, ls %.0f ms | ratios write %.2fx, read %.2fx, ls time %.2fx",
			d.write, d.read, d.ls, sl.write/d.write, sl.read/d.read, sl.ls/d.ls)
	}
	b.Log(line)
}

// volumeLs creates n volumes through the API, times docker volume ls
// (best of three) and removes them.
func volumeLs(b *testing.B, host string, n int) float64 {
	c := unixClient(strings.TrimPrefix(host, "unix://"))
	prefix := uniq("bench-ls")
	var names []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%04d", prefix, i)
		resp, err := c.Post("http://docker/volumes/create", "application/json", bytes.NewReader([]byte(`{"Name":"`+name+`"}`)))
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("create volume %s: %v %v", name, err, resp)
		}
		resp.Body.Close()
		names = append(names, name)
	}
	best := time.Duration(1 << 62)
	for j := 0; j < 3; j++ {
		start := time.Now()
		out := mustDocker(b, host, "volume", "ls", "-q")
		if d := time.Since(start); d < best {
			best = d
		}
		if strings.Count(out, prefix) != n {
			b.Fatalf("volume ls listed %d of %d", strings.Count(out, prefix), n)
		}
	}
	for _, name := range names {
		req, _ := http.NewRequest(http.MethodDelete, "http://docker/volumes/"+name, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return ms(best)
}
