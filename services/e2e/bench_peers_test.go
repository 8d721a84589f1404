package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkContainerToContainer measures a connection from one container
// to another on a user network, by name, on Sockerless (through both
// agents and the control plane's mesh) and on the machine's Docker engine
// in the same run: TCP connect + first byte (p50/p95, 200 connects) and
// 1 GiB sent through one connection; and docker network ls. Run it with:
//
//	go test ./services/e2e -run '^$' -bench ContainerToContainer -benchtime 1x
func BenchmarkContainerToContainer(b *testing.B) {
	s := requireStack(b)
	targets := withNettestReference(b, s, []struct{ name, host string }{{"sockerless", s.direct}})
	type result struct {
		p50, p95 time.Duration
		mibps    float64
		ls       time.Duration
	}
	res := map[string]result{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			net, srv := unique("bench-c2c-net-"+tg.name), unique("bench-c2c-srv-"+tg.name)
			mustDocker(b, tg.host, "network", "create", net)
			mustDocker(b, tg.host, "run", "-d", "--name", srv, "--network", net, "nettest", "netserver", "9000")
			var r result
			out := strings.Fields(mustDocker(b, tg.host, "run", "--rm", "--network", net, "nettest", "netclient", "ping", srv+":9000", "200"))
			if len(out) != 2 {
				b.Fatalf("netclient ping printed %v", out)
			}
			p50, _ := strconv.Atoi(out[0])
			p95, _ := strconv.Atoi(out[1])
			r.p50, r.p95 = time.Duration(p50)*time.Microsecond, time.Duration(p95)*time.Microsecond
			msOut := strings.TrimSpace(mustDocker(b, tg.host, "run", "--rm", "--network", net, "nettest", "netclient", "sink", srv+":9000", fmt.Sprint(1<<30)))
			took, err := strconv.Atoi(msOut)
			if err != nil || took <= 0 {
				b.Fatalf("netclient sink printed %q", msOut)
			}
			r.mibps = 1024 / (float64(took) / 1000)
			start := time.Now()
			for range 10 {
				mustDocker(b, tg.host, "network", "ls")
			}
			r.ls = time.Since(start) / 10
			res[tg.name] = r
			docker(b, tg.host, "rm", "-f", srv)
			docker(b, tg.host, "network", "rm", net)
		}
	}
	d, hasDocker := res["docker"]
	for _, name := range []string{"sockerless", "docker"} {
		r, ok := res[name]
		if !ok {
			continue
		}
		line := fmt.Sprintf("%-10s connect+first byte p50 %6.2f ms p95 %6.2f ms | 1 GiB through one connection %7.1f MiB/s | docker network ls %6.1f ms",
			name, ms(r.p50), ms(r.p95), r.mibps, ms(r.ls))
		if name != "docker" {
			b.ReportMetric(ms(r.p50), "c2c-connect-p50-ms")
			b.ReportMetric(r.mibps, "c2c-MiB/s")
			if hasDocker {
				line += fmt.Sprintf(" | x docker: p50 %.2fx p95 %.2fx, throughput %.3fx, network ls %.2fx",
					float64(r.p50)/float64(d.p50), float64(r.p95)/float64(d.p95), r.mibps/d.mibps, float64(r.ls)/float64(d.ls))
				b.ReportMetric(float64(r.p50)/float64(d.p50), "c2c-connect-p50-x-docker")
				b.ReportMetric(r.mibps/d.mibps, "c2c-throughput-x-docker")
			}
		}
		b.Log(line)
	}
}
