package gcpsim_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

// BenchmarkInstanceColdStart measures a function instance's cold start as
// its first request sees it (image cached; rootfs, network namespace,
// runc, listening on PORT, and the request itself), with the instance
// network's relays alone and with pasta's internet egress too:
//
//	go test ./services/internal/gcpsim -run '^$' -bench ColdStart -benchtime 20x
func BenchmarkInstanceColdStart(b *testing.B) {
	needRunc(b)
	for _, v := range []struct {
		name string
		cfg  gcpsim.Config
	}{
		{"relays", gcpsim.Config{NoInternet: true}},
		{"relays+pasta", gcpsim.Config{}},
	} {
		b.Run(v.name, func(b *testing.B) {
			cfg := v.cfg
			cfg.StopGrace = time.Second
			srv := startSim(b, cfg)
			_, rc := clients(b, srv)
			url := createService(b, rc, "cold", pushHTTPD(b, srv, "cold", "cold"), time.Minute, 1).GetUri()
			coldStart := func() time.Duration {
				start := time.Now()
				if code, body := get(b, url+"/cgi-bin/exit"); code != 200 {
					b.Fatalf("exit = %d %q", code, body)
				}
				d := time.Since(start)
				waitFor(b, "the instance to end", func() bool { return len(srv.Instances()) == 0 })
				return d
			}
			coldStart() // pulls and unpacks the image
			var lat []time.Duration
			for b.Loop() {
				lat = append(lat, coldStart())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}
