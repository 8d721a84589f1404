package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkPublishedPorts measures a published port (netserver in the
// nettest image) directly on the --dev socket (the control plane binds
// it), through the forwarder and on the machine's Docker engine, in one
// run: TCP connect + first byte (p50/p95), one connection carrying 1 GiB
// each way at once, and 100 connections at once carrying 10 MiB each way
// each (total throughput, and the control plane's and forwarder's CPU per
// MiB carried). Run it with:
//
//	go test ./services/e2e -run '^$' -bench PublishedPorts -benchtime 1x
func BenchmarkPublishedPorts(b *testing.B) {
	s := requireStack(b)
	targets := withNettestReference(b, s, s.hosts())
	type result struct {
		p50, p95       time.Duration
		one, many      float64 // MiB/s each way
		cpCPU, fwCPU   float64 // CPU ms per MiB carried (100 connections)
		manyMiB, oneMB float64
	}
	res := map[string]result{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			addr := benchNettest(b, tg.host, "bench-pub-"+tg.name)
			var r result
			r.p50, r.p95 = percentiles(connectFirstByte(b, addr, 200))

			start := time.Now()
			echoBytes(b, addr, 1<<30)
			r.one = 1024 / time.Since(start).Seconds()

			cp0, fw0 := cpuTime(b, s.cp.cmd.Process.Pid), cpuTime(b, s.fw.cmd.Process.Pid)
			start = time.Now()
			var wg sync.WaitGroup
			for j := 0; j < 100; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					echoBytes(b, addr, 10<<20)
				}()
			}
			wg.Wait()
			d := time.Since(start)
			r.many = 1000 / d.Seconds()
			total := 2.0 * 1000 // MiB carried, both ways
			if tg.name != "docker" {
				r.cpCPU = float64((cpuTime(b, s.cp.cmd.Process.Pid) - cp0).Milliseconds()) / total
				r.fwCPU = float64((cpuTime(b, s.fw.cmd.Process.Pid) - fw0).Milliseconds()) / total
			}
			res[tg.name] = r
			docker(b, tg.host, "rm", "-f", unique("bench-pub-"+tg.name))
		}
	}
	d, hasDocker := res["docker"]
	for _, name := range []string{"direct", "forwarder", "docker"} {
		r, ok := res[name]
		if !ok {
			continue
		}
		line := fmt.Sprintf("%-9s connect+first byte p50 %6.2f ms p95 %6.2f ms | 1 conn %7.1f MiB/s each way | 100 conns %7.1f MiB/s each way",
			name, ms(r.p50), ms(r.p95), r.one, r.many)
		if name != "docker" {
			line += fmt.Sprintf(" | CPU per MiB: control plane %.2f ms, forwarder %.2f ms", r.cpCPU, r.fwCPU)
			b.ReportMetric(ms(r.p50), name+"-connect-p50-ms")
			b.ReportMetric(r.one, name+"-1conn-MiB/s")
			b.ReportMetric(r.many, name+"-100conn-MiB/s")
			b.ReportMetric(r.cpCPU, name+"-cp-cpu-ms/MiB")
			if hasDocker {
				line += fmt.Sprintf(" | x docker: p50 %.2fx p95 %.2fx, 1 conn %.2fx, 100 conns %.2fx",
					float64(r.p50)/float64(d.p50), float64(r.p95)/float64(d.p95), r.one/d.one, r.many/d.many)
				b.ReportMetric(float64(r.p50)/float64(d.p50), name+"-connect-p50-x-docker")
				b.ReportMetric(r.one/d.one, name+"-1conn-x-docker")
				b.ReportMetric(r.many/d.many, name+"-100conn-x-docker")
			}
		}
		b.Log(line)
	}
}

// withNettestReference adds the machine's Docker engine to targets when it
// answers, with the nettest image loaded.
func withNettestReference(b *testing.B, s *stack, targets []struct{ name, host string }) []struct{ name, host string } {
	if dockerAnswers(b) {
		if err := loadNettest(s.bin, referenceDocker); err != nil {
			b.Logf("no ratios: %v", err)
		} else {
			targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
		}
	}
	return targets
}

// benchNettest runs netserver publishing a free port; it returns the
// address.
func benchNettest(b *testing.B, host, prefix string) string {
	ctr := unique(prefix)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hp, cp := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), strconv.Itoa(ln2.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ln2.Close()
	docker(b, host, "rm", "-f", ctr)
	mustDocker(b, host, "run", "-d", "--name", ctr, "-p", hp+":"+cp, "nettest", "netserver", cp)
	addr := "127.0.0.1:" + hp
	deadline := time.Now().Add(60 * time.Second)
	for ping(addr) != nil {
		if time.Now().After(deadline) {
			b.Fatalf("%s not served", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return addr
}

// connectFirstByte times n connects to the ping server, each until the
// first byte of the answer.
func connectFirstByte(b *testing.B, addr string, n int) []time.Duration {
	var out []time.Duration
	buf := make([]byte, 1)
	for i := 0; i < n; i++ {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte{'p', 1}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
		c.Close()
	}
	return out
}

// echoBytes sends n bytes through the echo server and reads them back, at
// once.
func echoBytes(b *testing.B, addr string, n int64) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 256<<10)
		buf[0] = 'e'
		left := n + 1
		for left > 0 {
			k := min(int64(len(buf)), left)
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			buf[0] = 0
			left -= k
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.Copy(io.Discard, c)
	if err != nil || got != n {
		b.Errorf("echo: %d of %d bytes, %v", got, n, err)
	}
}

// cpuTime is the user and system CPU time pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
}
