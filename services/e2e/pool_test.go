package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sockerless/sockerless/services/internal/testimage"
)

// googleScale runs gcpsim's google profile fifty times as fast: a
// CreateFunction takes 1.8 s, a revision 0.3 s, a cold start 30 ms plus
// the pull.
const googleScale = "0.02"

// googleStack starts a stack of its own on gcpsim's google profile at
// scale, with extra control plane flags.
func googleStack(t testing.TB, scale string, args ...string) *stack {
	return otherStack(t, append([]string{"--sim-profile", "google", "--sim-time-scale", scale}, args...), nil)
}

// pushNewImage pushes a busybox image that no stack has seen (a file of
// its own makes its ID unique) as docker.io/library/<repo>:latest of the
// e2e registry, and returns repo.
func pushNewImage(t testing.TB, s *stack, repo string) string {
	t.Helper()
	img, err := testimage.Busybox(testimage.Options{Files: map[string]string{"/which": repo + fmt.Sprint(time.Now().UnixNano()) + "\n"}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.registry+"/library/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", repo, err)
	}
	return repo
}

// poolState is GET /sockerless/v1/pool's answer.
type poolState struct {
	Size     int `json:"size"`
	Ready    int `json:"ready"`
	Creating int `json:"creating"`
	Claimed  int `json:"claimed"`
}

func (s *stack) pool(t testing.TB) poolState {
	t.Helper()
	resp, body := s.apiRequest(t, http.MethodGet, "/sockerless/v1/pool", nil, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET pool: %d %s", resp.StatusCode, body)
	}
	var st poolState
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("pool answer %s: %v", body, err)
	}
	return st
}

// awaitPool waits until the pool has want ready stubs.
func (s *stack) awaitPool(t testing.TB, want int, within time.Duration) poolState {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := s.pool(t)
		if st.Ready >= want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool has %+v after %s, want %d ready", st, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPoolClaimsAStubForANewImageAndRefills(t *testing.T) {
	s := googleStack(t, googleScale, "--pool-size", "2")
	s.awaitPool(t, 2, time.Minute)
	before := s.simStats(t)
	if before["createFunction"] != 2 {
		t.Fatalf("CreateFunction calls %v for a pool of 2", before["createFunction"])
	}
	img := pushNewImage(t, s, "pooled")
	if out := mustDocker(t, s.direct, "run", "--rm", img, "echo", "from the pool"); strings.TrimSpace(out) != "from the pool" {
		t.Fatalf("output %q", out)
	}
	after := s.simStats(t)
	if after["updateService"] < before["updateService"]+1 {
		t.Fatalf("no revision deployed for the image: %v → %v", before["updateService"], after["updateService"])
	}
	st := s.pool(t)
	if st.Claimed != 1 {
		t.Fatalf("pool %+v: want one stub claimed", st)
	}
	st = s.awaitPool(t, 2, time.Minute) // refilled in the background
	if got := s.simStats(t)["createFunction"]; got != 3 {
		t.Fatalf("CreateFunction calls %v: want the 2 stubs and 1 refill, none for the image", got)
	}
	// The image's function is kept and reused: a second run claims nothing.
	mustDocker(t, s.direct, "run", "--rm", img, "true")
	if st2 := s.pool(t); st2.Claimed != 1 {
		t.Fatalf("pool %+v after a second run of the image, want still one claimed", st2)
	}
}

// simInstances lists gcpsim's instances of services whose name has sub
// ("" for all).
func (s *stack) simInstances(t testing.TB, sub string) []map[string]any {
	t.Helper()
	url, _ := s.cp.ready["gcpsim"].(string)
	resp, err := http.Get(url + "/sim/v1/instances")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, in := range all {
		if svc, _ := in["service"].(string); strings.Contains(svc, sub) {
			out = append(out, in)
		}
	}
	return out
}

// awaitIdle waits until gcpsim has exactly want instances, all listening
// and idle (warm), and returns their ids.
func (s *stack) awaitIdle(t testing.TB, want int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		all := s.simInstances(t, "")
		var ids []string
		for _, in := range all {
			l, _ := in["listening"].(bool)
			a, _ := in["active"].(float64)
			if l && a == 0 {
				ids = append(ids, in["id"].(string))
			}
		}
		if len(all) == want && len(ids) == want {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances %v after %s: want %d, idle", all, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPrewarmKeepsAWarmInstanceOfTheImage(t *testing.T) {
	s := googleStack(t, googleScale, "--prewarm-image", "warm")
	warm := pushNewImage(t, s, "warm")
	cold := pushNewImage(t, s, "cold")
	mustDocker(t, s.direct, "run", "--rm", cold, "true")
	mustDocker(t, s.direct, "run", "--rm", warm, "true")
	// Once the runs' instances are gone, one is left: the prewarmed
	// image's warm instance (the other image keeps none).
	first := s.awaitIdle(t, 1, 30*time.Second)[0]
	started := s.simStats(t)["instancesStarted"]
	if out := mustDocker(t, s.direct, "run", "--rm", warm, "echo", "warm"); strings.TrimSpace(out) != "warm" {
		t.Fatalf("output %q", out)
	}
	// The container ran on the warm instance, which ended with it; another
	// took its place.
	deadline := time.Now().Add(30 * time.Second)
	for s.awaitIdle(t, 1, 30*time.Second)[0] == first {
		if time.Now().After(deadline) {
			t.Fatalf("the warm instance %s is still there: the container did not run on it", first)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := s.simStats(t)["instancesStarted"] - started; got != 1 {
		t.Fatalf("%v instances started for one run of a prewarmed image: want only the replacement", got)
	}
}

// burst runs n `docker run --rm` at once, spread over imgs, and returns
// how long until all exited.
func burst(t testing.TB, host string, imgs []string, n int) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		img := imgs[i%len(imgs)]
		wg.Go(func() {
			want := fmt.Sprintf("burst-%d", i)
			r := docker(t, host, "run", "--rm", img, "echo", want)
			if r.code != 0 || strings.TrimSpace(r.stdout) != want {
				errs <- fmt.Errorf("run %d of %s: exit %d: %q %s", i, img, r.code, r.stdout, r.stderr)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return took
}

func TestBurstOfNewImagesMakesEachFunctionOnce(t *testing.T) {
	s := googleStack(t, googleScale)
	var imgs []string
	for i := range 5 {
		imgs = append(imgs, pushNewImage(t, s, fmt.Sprintf("burst%d", i)))
	}
	before := s.simStats(t)
	took := burst(t, s.direct, imgs, 50)
	after := s.simStats(t)
	if got := after["createFunction"] - before["createFunction"]; got != 5 {
		t.Fatalf("CreateFunction calls %v for 5 new images, want one each", got)
	}
	t.Logf("50 runs of 5 new images at once: %s", took)
}
