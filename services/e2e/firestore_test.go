package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/store/firestore/fsemu"
)

// firestoreStack starts a control plane on the Firestore emulator, in a
// project of its own.
func firestoreStack(t *testing.T) *stack {
	t.Helper()
	requireStack(t)
	fsemu.Start(t)
	return otherStack(t, []string{"--store", "firestore", "--gcp-project", fmt.Sprintf("e2e-%d", time.Now().UnixNano())}, nil)
}

// storeOps reads the control plane's count of store document operations.
func storeOps(t *testing.T, s *stack) (reads, writes int64) {
	t.Helper()
	resp, body := s.apiRequest(t, http.MethodGet, "/sockerless/v1/store-stats", nil, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("store stats: %d %s", resp.StatusCode, body)
	}
	var st struct{ Reads, Writes int64 }
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st.Reads, st.Writes
}

// What one `docker run --rm busybox echo hi` costs in Firestore document
// operations, once the image and its function are known (the issue's
// target: at most 10 writes).
func TestFirestoreOperationsPerRun(t *testing.T) {
	s := firestoreStack(t)
	mustDocker(t, s.direct, "run", "--rm", "busybox", "true") // image and function
	time.Sleep(time.Second)                                   // background work of the first run settles
	r0, w0 := storeOps(t, s)
	if out := mustDocker(t, s.direct, "run", "--rm", "busybox", "echo", "hi"); out != "hi\n" {
		t.Fatalf("run printed %q", out)
	}
	time.Sleep(time.Second) // the removal after the CLI returns
	r1, w1 := storeOps(t, s)
	t.Logf("docker run --rm busybox echo hi: %d document reads, %d writes", r1-r0, w1-w0)
	if w1-w0 > 10 {
		t.Errorf("%d writes per run, want at most 10", w1-w0)
	}
}
