package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// referenceDocker is the machine's Docker engine, if one answers.
const referenceDocker = "unix:///var/run/docker.sock"

// BenchmarkSpine measures, in one run, the create API round trip of a known
// image and a whole `docker run --rm busybox true`, on Sockerless's dev
// stack and (when one answers) on the machine's Docker engine with the same
// image, and reports p50/p95 and the ratios. Run it with:
//
//	go test ./services/e2e -run '^$' -bench Spine -benchtime 1x
func BenchmarkSpine(b *testing.B) {
	s := requireStack(b)
	const creates, runs = 50, 15
	mustDocker(b, s.direct, "pull", "busybox")
	targets := []struct{ name, host string }{{"sockerless", s.direct}}
	if dockerAnswers(b) {
		targets = append(targets, struct{ name, host string }{"docker", referenceDocker})
	}
	res := map[string][2]time.Duration{}
	for i := 0; i < b.N; i++ {
		for _, tg := range targets {
			c := unixClient(strings.TrimPrefix(tg.host, "unix://"))
			ids, lat := timeCreates(b, c, creates)
			for _, id := range ids {
				req, _ := http.NewRequest("DELETE", "http://d/containers/"+id+"?force=1", nil)
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			var runLat []time.Duration
			for j := 0; j < runs; j++ {
				start := time.Now()
				mustDocker(b, tg.host, "run", "--rm", "busybox", "true")
				runLat = append(runLat, time.Since(start))
			}
			cp50, cp95 := percentiles(lat)
			rp50, rp95 := percentiles(runLat)
			res[tg.name+"/create"] = [2]time.Duration{cp50, cp95}
			res[tg.name+"/run"] = [2]time.Duration{rp50, rp95}
		}
	}
	for _, k := range []string{"create", "run"} {
		sl := res["sockerless/"+k]
		b.ReportMetric(ms(sl[0]), k+"-p50-ms")
		b.ReportMetric(ms(sl[1]), k+"-p95-ms")
		line := fmt.Sprintf("%-7s sockerless p50 %8.2f ms  p95 %8.2f ms", k, ms(sl[0]), ms(sl[1]))
		if d, ok := res["docker/"+k]; ok {
			b.ReportMetric(ms(d[0]), "docker-"+k+"-p50-ms")
			b.ReportMetric(float64(sl[0])/float64(d[0]), k+"-p50-x-docker")
			line += fmt.Sprintf(" | docker p50 %8.2f ms  p95 %8.2f ms | ratio p50 %.2fx p95 %.2fx",
				ms(d[0]), ms(d[1]), float64(sl[0])/float64(d[0]), float64(sl[1])/float64(d[1]))
		}
		b.Log(line)
	}
}

func timeCreates(b *testing.B, c *http.Client, n int) ([]string, []time.Duration) {
	var ids []string
	var lat []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		resp, err := c.Post("http://d/v1.41/containers/create", "application/json", strings.NewReader(`{"Image":"busybox","Cmd":["true"]}`))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != 201 {
			b.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		id := string(bytes.Split(bytes.Split(body, []byte(`"Id":"`))[1], []byte(`"`))[0])
		ids = append(ids, id)
	}
	return ids, lat
}

func percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*95+99)/100-1]
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// dockerAnswers reports whether the reference engine runs, loading the
// busybox test image into it.
func dockerAnswers(b *testing.B) bool {
	if err := loadReference(b); err != nil {
		b.Logf("%v: benchmarks without ratios", err)
		return false
	}
	return true
}

// loadReference checks that the machine's Docker engine answers and loads
// the busybox test image into it.
func loadReference(t testing.TB) error {
	if r := docker(t, referenceDocker, "info", "--format", "{{.ServerVersion}}"); r.code != 0 {
		return fmt.Errorf("no Docker engine at %s", referenceDocker)
	}
	img, err := testimage.Busybox(testimage.Options{})
	if err != nil {
		return err
	}
	return loadIntoReference("busybox:latest", img)
}

// loadIntoReference loads img as tag into the machine's Docker engine.
func loadIntoReference(tagName string, img v1.Image) error {
	tag, err := name.NewTag(tagName)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "reference-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return err
	}
	cmd := exec.Command("docker", "load", "-i", path)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+referenceDocker)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker load: %v %s", err, out)
	}
	return nil
}
