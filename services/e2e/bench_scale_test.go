package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkScale runs BENCH_SCALE_N (default 200) containers at once on a
// dev stack of its own, each sleeping and printing a line every second,
// and reports the control plane's resident memory per running container,
// its CPU time per stored log line and the p50 of `docker ps` with all of
// them running:
//
//	go test ./services/e2e -run '^$' -bench Scale -benchtime 1x
func BenchmarkScale(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("BENCH_SCALE_N")); err == nil && v > 0 {
		n = v
	}
	// One image's function may have --max-instances instances: room for
	// all n, and the lingering ones.
	s := otherStack(b, []string{"--max-instances", strconv.Itoa(n + 50)}, nil)
	pid := s.cp.cmd.Process.Pid
	mustDocker(b, s.direct, "run", "--rm", "busybox", "true") // image and function
	time.Sleep(2 * time.Second)
	rss0 := rssBytes(b, pid)
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		errs := make(chan error, n)
		for j := 0; j < n; j++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(j int) {
				defer wg.Done()
				defer func() { <-sem }()
				r := docker(b, s.direct, "run", "-d", "--name", fmt.Sprintf("scale-%d", j), "busybox",
					"sh", "-c", "while true; do echo tick; sleep 1; done")
				if r.code != 0 {
					errs <- fmt.Errorf("run %d: %s", j, r.stderr)
				}
			}(j)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.Logf("%d containers started in %s", n, time.Since(start).Round(time.Millisecond))
		// BENCH_SCALE_HOLD keeps them running that much longer, to
		// profile the machine with all of them up.
		if d, err := time.ParseDuration(os.Getenv("BENCH_SCALE_HOLD")); err == nil {
			b.Logf("holding %s (control plane pid %d, stack %s)", d, pid, s.dir)
			time.Sleep(d)
		}
		running := strings.Count(mustDocker(b, s.direct, "ps", "-q"), "\n")
		if running != n {
			b.Fatalf("%d running, want %d", running, n)
		}
		// Log lines and CPU over a window with all of them running.
		window := 20 * time.Second
		// (the docker logs that count the lines run outside the CPU window)
		lines0 := storedLines(b, s, n)
		cpu0 := cpuSeconds(b, pid)
		time.Sleep(window)
		cpu1 := cpuSeconds(b, pid)
		lines1 := storedLines(b, s, n)
		rss := rssBytes(b, pid)
		var lat []time.Duration
		for k := 0; k < 20; k++ {
			t0 := time.Now()
			mustDocker(b, s.direct, "ps")
			lat = append(lat, time.Since(t0))
		}
		p50, p95 := percentiles(lat)
		perCtr := float64(rss-rss0) / float64(n) / (1 << 20)
		perLine := (cpu1 - cpu0) / float64(max(lines1-lines0, 1)) * 1e6
		b.ReportMetric(perCtr, "rss-MiB/container")
		b.ReportMetric(perLine, "cpu-us/line")
		b.ReportMetric(ms(p50), "ps-p50-ms")
		b.Logf("%d running: control plane RSS %.1f MiB (%.1f MiB idle) = %.3f MiB per container; %d lines in %s, %.1f µs CPU per line; docker ps p50 %.1f ms p95 %.1f ms",
			n, float64(rss)/(1<<20), float64(rss0)/(1<<20), perCtr, lines1-lines0, window, perLine, ms(p50), ms(p95))
		ids := strings.Fields(mustDocker(b, s.direct, "ps", "-aq"))
		mustDocker(b, s.direct, append([]string{"rm", "-f"}, ids...)...)
	}
}

// rssBytes reads a process's resident set size.
func rssBytes(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// cpuSeconds reads a process's user and system CPU time.
func cpuSeconds(t testing.TB, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks of 10 ms
}

// storedLines counts the log lines stored for the scale containers.
func storedLines(t testing.TB, s *stack, n int) int {
	t.Helper()
	total := 0
	for j := 0; j < n; j++ {
		out := docker(t, s.direct, "logs", fmt.Sprintf("scale-%d", j))
		total += strings.Count(out.stdout, "\n")
	}
	return total
}
