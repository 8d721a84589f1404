package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
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
