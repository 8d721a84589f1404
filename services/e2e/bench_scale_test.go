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
// its CPU time per stored log line, the p50 and p95 of `docker ps` with
// all of them running, and for the whole stack (gcpsim and the instances'
// runc, agents, processes and pasta too) the memory (PSS) per container,
// the CPU and the machine's load. BENCH_SCALE_HOLD (a duration) keeps
// them running that much longer first, to profile. Run it niced on a
// shared machine:
//
//	nice -n 15 go test ./services/e2e -run '^$' -bench Scale -benchtime 1x
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
		tree0, _ := treeUsage(pid)
		time.Sleep(window)
		cpu1 := cpuSeconds(b, pid)
		tree1, pss := treeUsage(pid)
		load := loadAverage(b)
		lines1 := storedLines(b, s, n)
		rss := rssBytes(b, pid)
		var treeCPU float64
		for p, c := range tree1 {
			if c0, ok := tree0[p]; ok {
				treeCPU += c - c0
			}
		}
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
		b.ReportMetric(ms(p95), "ps-p95-ms")
		b.ReportMetric(float64(pss)/float64(n)/(1<<20), "stack-pss-MiB/container")
		b.ReportMetric(treeCPU/window.Seconds()*100, "stack-cpu-%")
		b.ReportMetric(load, "load1")
		b.Logf("%d running: control plane RSS %.1f MiB (%.1f MiB idle) = %.3f MiB per container; %d lines in %s, %.1f µs CPU per line; docker ps p50 %.1f ms p95 %.1f ms",
			n, float64(rss)/(1<<20), float64(rss0)/(1<<20), perCtr, lines1-lines0, window, perLine, ms(p50), ms(p95))
		b.Logf("whole stack (control plane, gcpsim, each instance's runc, agent, processes; pasta): PSS %.0f MiB = %.2f MiB per container, CPU %.0f%% of one core; machine load %.1f",
			float64(pss)/(1<<20), float64(pss)/float64(n)/(1<<20), treeCPU/window.Seconds()*100, load)
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
	_, cpu, err := procStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return cpu
}

// procStat reads a process's parent and its user and system CPU time.
func procStat(pid int) (ppid int, cpu float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ppid, (ut + st) / 100, nil // clock ticks of 10 ms
}

// treeUsage returns the CPU seconds of pid and each of its descendants
// (the control plane: gcpsim, and each instance's runc, agent and
// processes; pasta), by pid, and their summed proportional set size
// (shared pages divided among the processes sharing them).
func treeUsage(pid int) (map[int]float64, int64) {
	type proc struct {
		ppid int
		cpu  float64
	}
	procs := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, cpu, err := procStat(p)
		if err != nil {
			continue // ended meanwhile
		}
		procs[p] = proc{ppid, cpu}
	}
	children := map[int][]int{}
	for p, pr := range procs {
		children[pr.ppid] = append(children[pr.ppid], p)
	}
	cpu := map[int]float64{}
	var pss int64
	for todo := []int{pid}; len(todo) > 0; {
		p := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[p]...)
		cpu[p] = procs[p].cpu
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				pss += kb << 10
			}
		}
	}
	return cpu, pss
}

// loadAverage is the machine's 1-minute load average.
func loadAverage(t testing.TB) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	return v
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
