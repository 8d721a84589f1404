package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSurface measures what issue 3 asks for, in one run, on the dev
// stack and (when one answers) on the machine's Docker engine:
// `docker exec c true` p50/p95, the throughput of a process writing
// SOCKERLESS_BENCH_MB (default 200) MB through docker run's attach, and the
// control plane's memory per running container with one open exec.
//
//	go test ./services/e2e -run '^$' -bench Surface -benchtime 1x
func BenchmarkSurface(b *testing.B) {
	s := requireStack(b)
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("SOCKERLESS_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	targets := []struct{ name, host string }{{"sockerless", s.direct}}
	if dockerAnswers(b) {
		targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
	}
	type result struct{ p50, p95, mbps float64 }
	res := map[string]result{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			name := "bench-exec-" + tg.name
			mustDocker(b, tg.host, "run", "-d", "--name", name, "busybox", "sleep", "300")
			var lat []time.Duration
			for j := 0; j < 30; j++ {
				start := time.Now()
				mustDocker(b, tg.host, "exec", name, "true")
				lat = append(lat, time.Since(start))
			}
			docker(b, tg.host, "rm", "-f", name)
			p50, p95 := percentiles(lat)

			cmd := exec.Command("docker", "run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("head -c %d /dev/zero", mb<<20))
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+tg.host, "DOCKER_CONFIG="+dockerConfigDir(b))
			out, _ := cmd.StdoutPipe()
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, out)
			if err := cmd.Wait(); err != nil || n != int64(mb<<20) {
				b.Fatalf("%s: read %d bytes, %v", tg.name, n, err)
			}
			secs := time.Since(start).Seconds()
			res[tg.name] = result{ms(p50), ms(p95), float64(mb) / secs}
		}
	}
	sl := res["sockerless"]
	b.ReportMetric(sl.p50, "exec-p50-ms")
	b.ReportMetric(sl.p95, "exec-p95-ms")
	b.ReportMetric(sl.mbps, "attach-MB/s")
	line := fmt.Sprintf("exec sockerless p50 %.1f ms p95 %.1f ms; attach %d MB at %.1f MB/s", sl.p50, sl.p95, mb, sl.mbps)
	if d, ok := res["docker"]; ok {
		b.ReportMetric(sl.p50/d.p50, "exec-p50-x-docker")
		b.ReportMetric(sl.mbps/d.mbps, "attach-x-docker")
		line += fmt.Sprintf(" | docker exec p50 %.1f ms p95 %.1f ms; attach %.1f MB/s | ratios exec p50 %.2fx, attach throughput %.2fx",
			d.p50, d.p95, d.mbps, sl.p50/d.p50, sl.mbps/d.mbps)
	}
	b.Log(line)
	perContainer := memoryPerContainer(b, s)
	b.ReportMetric(perContainer/1024, "cp-KiB-per-container-with-exec")
	b.Logf("control plane memory per running container with one open exec: %.0f KiB", perContainer/1024)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// memoryPerContainer starts 10 containers each with an open `exec -i cat`
// and returns the control plane's RSS growth per container, in bytes.
func memoryPerContainer(b *testing.B, s *stack) float64 {
	const n = 10
	before := rss(b, s.cp.cmd.Process.Pid)
	var execs []*exec.Cmd
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("bench-mem-%d", i)
		mustDocker(b, s.direct, "run", "-d", "--name", name, "busybox", "sleep", "300")
		cmd := exec.Command("docker", "exec", "-i", name, "cat")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+s.direct, "DOCKER_CONFIG="+dockerConfigDir(b))
		if _, err := cmd.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		execs = append(execs, cmd)
	}
	time.Sleep(2 * time.Second)
	after := rss(b, s.cp.cmd.Process.Pid)
	for i, c := range execs {
		c.Process.Kill()
		c.Wait()
		docker(b, s.direct, "rm", "-f", fmt.Sprintf("bench-mem-%d", i))
	}
	return float64(after-before) / n
}

func rss(b testing.TB, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
