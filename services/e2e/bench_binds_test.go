package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkBinds measures host bind mounts (issue 12) on the dev socket,
// through the forwarder and, when it answers, on the machine's Docker
// engine in the same run:
//
//   - initial sync of a 10,000-file, 200 MB tree: docker run --rm with the
//     bind minus the same run without it (s, MB/s);
//
//   - the barrier an exec pays with nothing pending: median docker exec
//     in a container with a bind minus one without binds (ms);
//
//   - one file written on the host until the container saw it and its
//     answer is back on the host (round trip, ms; one way is about half).
//
//     go test ./services/e2e -run '^$' -bench Binds -benchtime 1x
func BenchmarkBinds(b *testing.B) {
	s := requireStack(b)
	targets := []struct{ name, host string }{{"direct", s.direct}, {"forwarder", s.fwd}}
	if dockerAnswers(b) {
		targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
	}
	tree := b.TempDir()
	const files, size = 10000, 20 * 1024
	total := makeTree(b, tree, files, size)
	mb := float64(total) / (1 << 20)
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			// Initial sync.
			timed := func(args ...string) time.Duration {
				start := time.Now()
				mustDocker(b, tg.host, args...)
				return time.Since(start)
			}
			timed("run", "--rm", "busybox", "true") // warm
			without := timed("run", "--rm", "busybox", "true")
			with := timed("run", "--rm", "-v", tree+":/w", "busybox", "true")
			sync := (with - without).Seconds()
			if sync <= 0 {
				sync = with.Seconds() / 1e3
			}

			// Barrier cost.
			small := b.TempDir()
			writeFile(b, filepath.Join(small, "x"), "x", 0o644)
			cb, cn := uniq("bench-bind"), uniq("bench-nobind")
			mustDocker(b, tg.host, "run", "-d", "--name", cb, "-v", small+":/w", "busybox", "sh", "-c",
				"i=1; while true; do if [ -f /w/p$i ]; then echo $i > /w/a$i; i=$((i+1)); else usleep 1000; fi; done")
			mustDocker(b, tg.host, "run", "-d", "--name", cn, "busybox", "sleep", "600")
			execMedian := func(c string) time.Duration {
				var ds []time.Duration
				for range 21 {
					ds = append(ds, timed("exec", c, "true"))
				}
				sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
				return ds[len(ds)/2]
			}
			execMedian(cn)
			plain, bound := execMedian(cn), execMedian(cb)

			// One changed file, there and back.
			var rts []time.Duration
			for j := 1; j <= 21; j++ {
				start := time.Now()
				writeFile(b, filepath.Join(small, fmt.Sprintf("p%d", j)), "go", 0o644)
				ack := filepath.Join(small, fmt.Sprintf("a%d", j))
				for {
					if _, err := os.Stat(ack); err == nil {
						break
					}
					if time.Since(start) > 30*time.Second {
						b.Fatalf("%s: change %d never came back", tg.name, j)
					}
					time.Sleep(200 * time.Microsecond)
				}
				rts = append(rts, time.Since(start))
			}
			sort.Slice(rts, func(i, j int) bool { return rts[i] < rts[j] })
			rt := rts[len(rts)/2]
			docker(b, tg.host, "rm", "-f", cb, cn)

			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
			b.ReportMetric(sync, tg.name+"-sync-s")
			b.ReportMetric(mb/sync, tg.name+"-sync-MB/s")
			b.ReportMetric(ms(bound-plain), tg.name+"-barrier-ms")
			b.ReportMetric(ms(rt), tg.name+"-roundtrip-ms")
			b.Logf("%s: initial sync of %d files, %.0f MB: %.2f s (%.1f MB/s; run with bind %.2f s, without %.2f s); exec median %.1f ms with a bind, %.1f ms without (barrier %.1f ms); host change seen and answered in %.1f ms",
				tg.name, files, mb, sync, mb/sync, with.Seconds(), without.Seconds(), ms(bound), ms(plain), ms(bound-plain), ms(rt))
		}
	}
}
