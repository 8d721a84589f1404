package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// docker logs -f through the forwarder goes on across a graceful restart
// and a kill -9 of the control plane: every line once, in order, and the
// CLI exits 0 when the container exits.
func TestLogsFollowResumesAcrossRestarts(t *testing.T) {
	s := requireStack(t)
	const n = 200
	id := strings.TrimSpace(mustDocker(t, s.direct, "run", "-d", "busybox", "sh", "-c",
		fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo $i; i=$((i+1)); usleep 20000; done", n)))
	defer docker(t, s.direct, "rm", "-f", id)

	cmd := exec.Command("docker", "logs", "-f", id)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+s.fwd, "DOCKER_CONFIG="+dockerConfigDir(t))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, crash := range []bool{false, true} {
		time.Sleep(time.Second)
		if crash {
			s.crashControlPlane()
		} else {
			s.cp.stop()
		}
		if err := s.startControlPlane(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("docker logs -f: %v: %s", err, errOut.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("docker logs -f did not end; it printed %s", summarize(out.String()))
	}
	var want strings.Builder
	for i := range n {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if out.String() != want.String() {
		t.Fatalf("docker logs -f across restarts: %s", summarize(out.String()))
	}
}

// docker events through the forwarder goes on across a graceful restart
// and a kill -9 of the control plane: each event of the container once,
// in order.
func TestEventsResumeAcrossRestarts(t *testing.T) {
	s := requireStack(t)
	name := fmt.Sprintf("evresume-%d", time.Now().UnixNano())
	cmd := exec.Command("docker", "events", "--filter", "container="+name, "--format", "{{.Action}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+s.fwd, "DOCKER_CONFIG="+dockerConfigDir(t))
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(500 * time.Millisecond) // subscribed
	mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 3; exit 3")
	for _, crash := range []bool{false, true} {
		time.Sleep(time.Second)
		if crash {
			s.crashControlPlane()
		} else {
			s.cp.stop()
		}
		if err := s.startControlPlane(); err != nil {
			t.Fatal(err)
		}
	}
	if code := strings.TrimSpace(mustDocker(t, s.direct, "wait", name)); code != "3" {
		t.Fatalf("wait = %s", code)
	}
	mustDocker(t, s.direct, "rm", name)
	want := "create start die destroy"
	deadline := time.Now().Add(30 * time.Second)
	for strings.Join(strings.Fields(out.String()), " ") != want {
		if time.Now().After(deadline) {
			t.Fatalf("docker events across restarts printed %q, want %q", strings.Fields(out.String()), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // nothing more comes
	if got := strings.Join(strings.Fields(out.String()), " "); got != want {
		t.Fatalf("docker events across restarts printed %q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
