package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCopy measures `docker cp` of a SOCKERLESS_BENCH_MB (default 200)
// MB file into a running container and back out, in MB/s, on the dev stack
// and (when one answers) on the machine's Docker engine in the same run,
// and reports the ratios:
//
//	go test ./services/e2e -run '^$' -bench Copy -benchtime 1x
func BenchmarkCopy(b *testing.B) {
	s := requireStack(b)
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("SOCKERLESS_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "blob")
	writeRandomFile(b, src, int64(mb)<<20)
	want := sha256File(b, src)
	targets := []struct{ name, host string }{{"sockerless", s.direct}}
	if dockerAnswers(b) {
		targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
	}
	type result struct{ in, out float64 }
	res := map[string]result{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			name := "bench-cp-" + tg.name
			mustDocker(b, tg.host, "run", "-d", "--name", name, "busybox", "sleep", "600")
			start := time.Now()
			mustDocker(b, tg.host, "cp", src, name+":/tmp/blob")
			in := time.Since(start).Seconds()
			back := filepath.Join(dir, "back-"+tg.name)
			start = time.Now()
			mustDocker(b, tg.host, "cp", name+":/tmp/blob", back)
			out := time.Since(start).Seconds()
			docker(b, tg.host, "rm", "-f", name)
			if got := sha256File(b, back); got != want {
				b.Fatalf("%s: copied back sha256 %s, want %s", tg.name, got, want)
			}
			os.Remove(back)
			res[tg.name] = result{float64(mb) / in, float64(mb) / out}
		}
	}
	sl := res["sockerless"]
	b.ReportMetric(sl.in, "cp-in-MB/s")
	b.ReportMetric(sl.out, "cp-out-MB/s")
	line := fmt.Sprintf("docker cp %d MB: sockerless in %.1f MB/s, out %.1f MB/s", mb, sl.in, sl.out)
	if d, ok := res["docker"]; ok {
		b.ReportMetric(sl.in/d.in, "cp-in-x-docker")
		b.ReportMetric(sl.out/d.out, "cp-out-x-docker")
		line += fmt.Sprintf(" | docker in %.1f MB/s, out %.1f MB/s | ratios in %.2fx, out %.2fx", d.in, d.out, sl.in/d.in, sl.out/d.out)
	}
	b.Log(line)
}
