package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/store/firestore/fsemu"
)

// Containers that print a counter every 10 ms and exit with distinct codes
// survive two graceful restarts and two kill -9s of the control plane: every log is complete and in
// order, every wait returns the right code, ps -a is right. Instances run
// on in gcpsim meanwhile; their agents dial back and resend what the store
// had not acknowledged.
func TestChaosControlPlaneKilled(t *testing.T) {
	stores := []struct {
		name string
		run  func(t *testing.T) *stack
	}{
		{"bolt", func(t *testing.T) *stack { return requireStack(t) }},
		{"firestore", func(t *testing.T) *stack {
			requireStack(t)
			fsemu.Start(t)
			project := fmt.Sprintf("chaos-%d", time.Now().UnixNano())
			return otherStack(t, []string{"--store", "firestore", "--gcp-project", project}, nil)
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.run(t)
			chaos(t, s)
		})
	}
}

func chaos(t *testing.T, s *stack) {
	const n, lines = 20, 400
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("chaos-%d-%d", i, time.Now().UnixNano())
		script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo $i; i=$((i+1)); usleep 10000; done; exit %d", lines, 10+i)
		mustDocker(t, s.direct, "run", "-d", "--name", names[i], "busybox", "sh", "-c", script)
	}
	t.Cleanup(func() { docker(t, s.direct, append([]string{"rm", "-f"}, names...)...) })

	var backs []time.Duration
	// A redeploy (SIGTERM, drain) and a crash (kill -9), twice.
	for _, crash := range []bool{false, true, false, true} {
		time.Sleep(500 * time.Millisecond)
		if crash {
			s.crashControlPlane()
		} else {
			began := time.Now()
			s.cp.stop()
			// Cloud Run kills an instance 10 s after SIGTERM: it must be done by then.
			if d := time.Since(began); d > 10*time.Second {
				t.Errorf("graceful shutdown took %s, over Cloud Run's 10 s", d)
			}
		}
		logBefore := logSize(s)
		if err := s.startControlPlane(); err != nil {
			t.Fatal(err)
		}
		backs = append(backs, agentsBack(t, s, logBefore)...)
	}

	// The restarted control plane re-opened the invocations of running
	// containers (the agent logs each to Cloud Logging).
	if n := strings.Count(simLogs(t, s), "invocation resumed"); n == 0 {
		t.Errorf("no invocation was resumed after the restarts")
	}
	// A new container starts while the survivors run: the platform offers
	// it their instances only if their invocations were not re-opened, and
	// then it tries again.
	if out := mustDocker(t, s.fwd, "run", "--rm", "busybox", "echo", "new"); out != "new\n" {
		t.Fatalf("run after the restarts printed %q", out)
	}

	var want strings.Builder
	for i := range lines {
		fmt.Fprintf(&want, "%d\n", i)
	}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := s.hosts()[i%2].host
			code := strings.TrimSpace(mustDocker(t, host, "wait", name))
			if code != fmt.Sprint(10+i) {
				t.Errorf("%s: wait = %s, want %d", name, code, 10+i)
			}
			if out := mustDocker(t, host, "logs", name); out != want.String() {
				t.Errorf("%s: logs are not 0..%d once each in order: %s", name, lines-1, summarize(out))
			}
		}()
	}
	wg.Wait()
	ps := mustDocker(t, s.direct, "ps", "-a", "--filter", "name=chaos-", "--format", "{{.Names}} {{.Status}}")
	for i, name := range names {
		if !strings.Contains(ps, fmt.Sprintf("%s Exited (%d)", name, 10+i)) {
			t.Errorf("ps -a does not show %s Exited (%d):\n%s", name, 10+i, ps)
		}
	}
	if len(backs) > 0 {
		slices.Sort(backs)
		t.Logf("agents back after a control plane restart: %d reconnects, p50 %s, max %s",
			len(backs), backs[len(backs)/2], backs[len(backs)-1])
	}
}

// logSize is the size of the control plane's log now.
func logSize(s *stack) int64 {
	fi, err := os.Stat(filepath.Join(s.dir, "controlplane.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// agentsBack reads, from the control plane log past offset, how long each
// agent took to come back ("recover: agent is back"), giving them a few
// seconds (none come back if every container has ended meanwhile).
func agentsBack(t *testing.T, s *stack, offset int64) []time.Duration {
	t.Helper()
	var out []time.Duration
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out = out[:0]
		f, err := os.Open(filepath.Join(s.dir, "controlplane.log"))
		if err != nil {
			t.Fatal(err)
		}
		f.Seek(offset, 0)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var line struct {
				Message string `json:"message"`
				After   string `json:"after"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "recover: agent is back" {
				if d, err := time.ParseDuration(line.After); err == nil {
					out = append(out, d)
				}
			}
		}
		f.Close()
		if len(out) > 0 {
			time.Sleep(time.Second) // the rest arrive within the backoff
			return append([]time.Duration(nil), out...)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

// summarize describes a counter output briefly: its length and the first
// line out of place.
func summarize(out string) string {
	ls := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range ls {
		if l != fmt.Sprint(i) {
			return fmt.Sprintf("%d lines, line %d is %q", len(ls), i, l)
		}
	}
	return fmt.Sprintf("%d lines", len(ls))
}

// simLogs returns gcpsim's Cloud Logging entries as JSON text.
func simLogs(t *testing.T, s *stack) string {
	t.Helper()
	url, _ := s.cp.ready["gcpsim"].(string)
	resp, err := http.Get(url + "/sim/v1/logs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
