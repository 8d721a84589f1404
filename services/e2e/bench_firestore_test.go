package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/store/firestore/fsemu"
)

// BenchmarkFirestore measures, in one run, `docker run --rm busybox true`
// on the embedded store (bolt), on the Firestore emulator, and on the
// emulator with every call delayed by BENCH_STORE_LATENCY (default 15 ms,
// Firestore's typical latency within a region, modelling a hosted control
// plane), with the document reads and writes of one
// `docker run --rm busybox echo hi` on each Firestore stack; p50 and p95
// of BENCH_RUNS runs each (default 10). Run it with:
//
//	go test ./services/e2e -run '^$' -bench Firestore -benchtime 1x
//
// The emulator it launches runs at niceness BENCH_EMULATOR_NICE (default
// 19; 0 leaves it as is): it spends 100 ms and more of CPU per run, which
// on a 2-core machine slows the function instance's boot beside it, a
// cost Google's Firestore, on Google's machines, does not put on the
// control plane's. (Unless FIRESTORE_EMULATOR_HOST names one already.)
func BenchmarkFirestore(b *testing.B) {
	base := requireStack(b)
	niceEmulator(b)
	latency := 15 * time.Millisecond
	if v := os.Getenv("BENCH_STORE_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("BENCH_STORE_LATENCY: %v", err)
		}
		latency = d
	}
	runs := 10
	if v := os.Getenv("BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_RUNS: %q", v)
		}
		runs = n
	}
	targets := []struct {
		name string
		s    *stack
	}{
		{"bolt", base},
		{"firestore", firestoreStack(b)},
		{fmt.Sprintf("firestore+%s", latency), firestoreStack(b, "--store-latency", latency.String())},
	}
	p50 := map[string]time.Duration{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			mustDocker(b, tg.s.direct, "run", "--rm", "busybox", "true") // image and function
			time.Sleep(time.Second)
			if tg.name != "bolt" {
				r0, w0, e0 := storeOps(b, tg.s)
				mustDocker(b, tg.s.direct, "run", "--rm", "busybox", "echo", "hi")
				time.Sleep(time.Second) // the removal after the CLI returns
				r1, w1, e1 := storeOps(b, tg.s)
				b.Logf("%-18s run --rm echo: %d reads, %d writes (%d of state, %d event batches)",
					tg.name, r1-r0, w1-w0, (w1-w0)-(e1-e0), e1-e0)
				b.ReportMetric(float64(r1-r0), tg.name+"-reads/run")
				b.ReportMetric(float64(w1-w0), tg.name+"-writes/run")
			}
			var lat []time.Duration
			for j := 0; j < runs; j++ {
				start := time.Now()
				mustDocker(b, tg.s.direct, "run", "--rm", "busybox", "true")
				lat = append(lat, time.Since(start))
			}
			p, p95 := percentiles(lat)
			p50[tg.name] = p
			b.ReportMetric(ms(p), tg.name+"-run-p50-ms")
			b.Logf("%-18s run --rm true: p50 %7.1f ms  p95 %7.1f ms  (%.2fx bolt)", tg.name, ms(p), ms(p95), float64(p)/float64(p50["bolt"]))
		}
	}
	for _, tg := range targets[1:] {
		b.ReportMetric(float64(p50[tg.name])/float64(p50["bolt"]), tg.name+"-x-bolt")
	}
}

// niceEmulator launches the benchmark's Firestore emulator at niceness
// BENCH_EMULATOR_NICE (default 19), unless FIRESTORE_EMULATOR_HOST names
// one already.
func niceEmulator(b *testing.B) {
	if os.Getenv(fsemu.EnvHost) != "" {
		return
	}
	nice := 19
	if v := os.Getenv("BENCH_EMULATOR_NICE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("BENCH_EMULATOR_NICE: %v", err)
		}
		nice = n
	}
	emu, err := fsemu.Launch(context.Background())
	if errors.Is(err, fsemu.ErrNotInstalled) {
		b.Skipf("skipping: needs the Firestore emulator: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(emu.Stop)
	b.Setenv(fsemu.EnvHost, emu.Host)
	if nice != 0 {
		if err := emu.Renice(nice); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("Firestore emulator at niceness %d", nice)
}
