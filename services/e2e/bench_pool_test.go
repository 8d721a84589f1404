package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"
)

// BenchmarkGoogleClock measures what a user waits for on Google's clock
// (issue 14), on gcpsim's google profile at SOCKERLESS_BENCH_SCALE
// (default 0.1: CreateFunction 9 s, a revision 1.5 s, a cold start 0.15 s
// plus the pull; 1 is Google's own clock and takes minutes):
//
//   - the first `docker run --rm` of a never-seen image, without and with
//     the pool (target: with ≤ a revision + a cold start + 1 s);
//
//   - `docker run --rm` of a known image, cold and prewarmed, beside the
//     fast profile's figure (target: prewarmed ≤ fast + 0.3 s);
//
//   - 50 `docker run --rm` of 5 new images at once: time until all exited,
//     and the functions created.
//
//     go test ./services/e2e -run '^$' -bench GoogleClock -benchtime 1x
func BenchmarkGoogleClock(b *testing.B) {
	fast := requireStack(b)
	scale := 0.1
	if v, err := strconv.ParseFloat(os.Getenv("SOCKERLESS_BENCH_SCALE"), 64); err == nil && v > 0 {
		scale = v
	}
	sc := strconv.FormatFloat(scale, 'g', -1, 64)
	sec := func(d time.Duration) float64 { return d.Seconds() }
	scaled := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	runOnce := func(s *stack, img string) time.Duration {
		start := time.Now()
		mustDocker(b, s.direct, "run", "--rm", img, "true")
		return time.Since(start)
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	for i := 0; i < b.N; i++ {
		// Fast profile, known image.
		mustDocker(b, fast.direct, "run", "--rm", "busybox", "true")
		var fastRuns []time.Duration
		for range 3 {
			fastRuns = append(fastRuns, runOnce(fast, "busybox"))
		}
		fastKnown := median(fastRuns)

		// Never-seen image without the pool.
		plain := googleStack(b, sc)
		noPool := runOnce(plain, pushNewImage(b, plain, fmt.Sprintf("bnopool%d", i)))

		// With the pool, and prewarm, on another stack.
		warmName := fmt.Sprintf("bwarm%d", i)
		pooled := googleStack(b, sc, "--pool-size", "2", "--prewarm-image", warmName)
		pooled.awaitPool(b, 2, 10*time.Minute)
		img := pushNewImage(b, pooled, fmt.Sprintf("bpool%d", i))
		withPool := runOnce(pooled, img)

		// Known image: cold (every container gets a new instance).
		var coldRuns []time.Duration
		for range 3 {
			coldRuns = append(coldRuns, runOnce(pooled, img))
		}
		cold := median(coldRuns)

		// Known image, prewarmed: wait for its warm instance each time.
		warm := pushNewImage(b, pooled, warmName)
		pooled.awaitPool(b, 2, 10*time.Minute)
		runOnce(pooled, warm)
		var warmRuns []time.Duration
		for range 3 {
			pooled.awaitIdle(b, 1, time.Minute) // the warm instance, once the last run's is gone
			warmRuns = append(warmRuns, runOnce(pooled, warm))
		}
		prewarmed := median(warmRuns)

		// Burst of 50 runs of 5 new images.
		bs := googleStack(b, sc)
		var imgs []string
		for j := range 5 {
			imgs = append(imgs, pushNewImage(b, bs, fmt.Sprintf("bburst%d-%d", i, j)))
		}
		before := bs.simStats(b)["createFunction"]
		burstTook := burst(b, bs.direct, imgs, 50)
		created := bs.simStats(b)["createFunction"] - before

		target := scaled(15*time.Second) + scaled(1500*time.Millisecond) + time.Second
		b.ReportMetric(sec(noPool), "first-run-no-pool-s")
		b.ReportMetric(sec(withPool), "first-run-pool-s")
		b.ReportMetric(sec(cold), "known-cold-s")
		b.ReportMetric(sec(prewarmed), "known-prewarmed-s")
		b.ReportMetric(sec(fastKnown), "known-fast-profile-s")
		b.ReportMetric(sec(burstTook), "burst50-s")
		b.ReportMetric(created, "burst-functions-created")
		b.Logf("google profile at scale %s: first run of a new image %.2f s without the pool, %.2f s with it (target ≤ %.2f s: revision + cold start + 1 s); "+
			"known image cold %.2f s, prewarmed %.2f s, fast profile %.2f s (target prewarmed ≤ %.2f s); "+
			"50 runs of 5 new images at once: %.2f s, %v functions created",
			sc, sec(noPool), sec(withPool), sec(target), sec(cold), sec(prewarmed), sec(fastKnown), sec(fastKnown)+0.3, sec(burstTook), created)
	}
}

// BenchmarkGoogleFirstRun is BenchmarkGoogleClock's first-run-with-pool
// figure alone, over a few never-seen images on one pooled stack (the
// median is reported): the quick loop for work on that path.
//
//	go test ./services/e2e -run '^$' -bench GoogleFirstRun -benchtime 1x
func BenchmarkGoogleFirstRun(b *testing.B) {
	requireStack(b)
	scale := 0.1
	if v, err := strconv.ParseFloat(os.Getenv("SOCKERLESS_BENCH_SCALE"), 64); err == nil && v > 0 {
		scale = v
	}
	sc := strconv.FormatFloat(scale, 'g', -1, 64)
	pooled := googleStack(b, sc, "--pool-size", "2")
	target := time.Duration(float64(15*time.Second+1500*time.Millisecond)*scale) + time.Second
	for i := 0; i < b.N; i++ {
		var runs []time.Duration
		for j := range 3 {
			pooled.awaitPool(b, 2, 10*time.Minute)
			img := pushNewImage(b, pooled, fmt.Sprintf("bfirst%d-%d", i, j))
			start := time.Now()
			mustDocker(b, pooled.direct, "run", "--rm", img, "true")
			runs = append(runs, time.Since(start))
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
		b.ReportMetric(runs[len(runs)/2].Seconds(), "first-run-pool-s")
		b.Logf("first run of a new image with the pool at scale %s: %v (median %.2f s; target ≤ %.2f s)", sc, runs, runs[len(runs)/2].Seconds(), target.Seconds())
	}
}
